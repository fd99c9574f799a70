// `tsoverlay network create|rm` inside the daemon (POST /v1/networks, DELETE /v1/networks/:ref):
// the pool from the IPAM, then the network from the daemon's own bridge, overlay or host driver,
// exactly as a CNI ADD would make it (same ids, same pool ref), so a conflist naming the network
// finds it. Docker's networks (64-hex ids) are left to `docker network rm`.
import { cidr, type Ipam, type PoolInfo } from '../ipam/index.js';
import type { BridgeDriver } from '../plugins/drivers/bridge/bridge.js';
import { parseBridgeNetwork } from '../plugins/drivers/bridge/config.js';
import { isDriverError } from '../plugins/drivers/common/errors.js';
import { RecordStore } from '../plugins/drivers/common/record-store.js';
import type { NetworkRecord } from '../plugins/drivers/common/records.js';
import type { HostDriver } from '../plugins/drivers/host/host.js';
import { parseHostNetwork } from '../plugins/drivers/host/config.js';
import { parseOverlayNetwork } from '../plugins/drivers/overlay/config.js';
import type { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import { bridgeNetworkId } from '../plugins/cni/bridge-conf.js';
import { hostNetworkId } from '../plugins/cni/tshost-handlers.js';
import { overlayNetworkId } from '../plugins/cni/tsoverlay-handlers.js';
import { addressSpaceOf } from '../plugins/cni/tsipam-handlers.js';
import type { Store } from '../store/types.js';
import { CodedError } from '../store/errors.js';
import { findNetwork } from './commands/links-services.js';
import { DRIVERS, mapOptions, optionKeys, type CliDriver } from './network-options.js';
import type { Logger } from './log.js';

export { DRIVERS, type CliDriver } from './network-options.js';

/** What POST /v1/networks takes: the flags of `tsoverlay network create`. */
export interface NetworkCreateRequest {
  name: string;
  driver: CliDriver;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  /** `-o key=value` pairs, as given. */
  options?: Record<string, string>;
}

type AdminCode = 'invalid-argument' | 'name-in-use' | 'subnet-in-use' | 'bridge-in-use' | 'active-endpoints' | 'docker-network';

/** A refusal of network create/rm; the message names the flag (or network) and value. */
export class NetworkAdminError extends CodedError<AdminCode> {
  constructor(code: AdminCode, message: string) {
    super('NetworkAdminError', code, code === 'invalid-argument' ? 'bad-request' : 'conflict', message, false);
  }
}

const bad = (flag: string, value: unknown, why: string) => new NetworkAdminError('invalid-argument', `${flag} ${JSON.stringify(value)}: ${why}`);

/** Names a CNI conflist can carry and the IPAM's owner strings accept (Docker's name rule). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface NetworkAdminDeps {
  store: Store;
  /** The daemon's store URL: its address space is the one CNI's tsipam uses with it. */
  storeUrl: string;
  hostId: string;
  ipam: Ipam;
  bridge: BridgeDriver;
  host: HostDriver;
  overlay: OverlayDriver;
  log: Logger;
}

/** The IPAM pool ref of a network made here: the one tsipam takes for the CNI network of that name. */
export const poolRefOf = (name: string) => `cni:${name}`;

/** Network create and remove for the CLI, one at a time. */
export class NetworkAdmin {
  private readonly records: RecordStore;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: NetworkAdminDeps) {
    this.records = new RecordStore(deps.store);
  }

  /** Create a network; the record it made. Bad input is refused before anything is written. */
  create(body: unknown): Promise<NetworkRecord> {
    return this.serial(() => this.createNow(checkRequest(body)));
  }

  /** Remove a network by id, name or id prefix; refused while it has endpoints. */
  remove(ref: string): Promise<NetworkRecord> {
    return this.serial(() => this.removeNow(ref));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private idOf(req: NetworkCreateRequest): string {
    if (req.driver === 'tsoverlay') return overlayNetworkId(req.name);
    return req.driver === 'tshost' ? hostNetworkId(req.name, this.deps.hostId) : bridgeNetworkId(req.name, this.deps.hostId);
  }

  private async createNow(req: NetworkCreateRequest): Promise<NetworkRecord> {
    const id = this.idOf(req);
    const options = mapOptions(req.driver, req.options ?? {});
    // Options and flags checked by the driver's own parser first: nothing is allocated for a bad one.
    dryParse(req, id, options);
    const nets = await this.records.listNetworks();
    const taken = nets.find((n) => n.name === req.name || n.id === id || n.id === req.name);
    if (taken) throw new NetworkAdminError('name-in-use', `network with name ${req.name} already exists (id ${taken.id}, driver ${taken.driver})`);
    if (req.driver === 'tshost') return this.deps.host.createNetwork({ id, name: req.name, options });
    if (req.subnet) assertNoOverlap(nets, req.subnet);
    const { pool, held } = await this.pool(req);
    let done = false;
    try {
      const subnets = [{ subnet: pool.cidr, ...(pool.gateway ? { gateway: pool.gateway } : {}) }];
      if (!req.subnet) assertNoOverlap(nets, pool.cidr);
      if (pool.gateway) await this.deps.ipam.requestAddress(pool.poolId, { kind: 'gateway' });
      const input = { id, name: req.name, subnets, internal: req.internal === true, options };
      const rec = req.driver === 'tsoverlay' ? await this.deps.overlay.createNetwork(input) : await this.deps.bridge.createNetwork(input);
      done = true;
      this.deps.log.info({ network: id, name: req.name, driver: rec.driver, subnets: rec.subnets, bridge: rec.bridge }, 'network created (local API)');
      return rec;
    } catch (err) {
      throw optionError(err, req);
    } finally {
      // A pool this name held before (tsipam's, from an earlier conflist) stays as it was.
      if (!done && !held) await this.releasePool(pool, req.name).catch((e: Error) => this.deps.log.warn({ pool: pool.poolId, err: e.message }, 'rollback: pool not released'));
    }
  }

  /**
   * The network's pool under the ref CNI's tsipam uses for this name (`held`: it had that ref
   * already); refused when someone else holds it.
   */
  private async pool(req: NetworkCreateRequest): Promise<{ pool: PoolInfo; held: boolean }> {
    const ref = poolRefOf(req.name);
    const held = (await this.deps.ipam.listPools()).some((p) => p.refs.includes(ref) && (req.subnet === undefined ? p.auto : p.cidr === req.subnet));
    const pool = await this.deps.ipam
      .requestPool({
        space: addressSpaceOf(this.deps.storeUrl),
        ...(req.subnet ? { cidr: req.subnet } : {}),
        ...(req.ipRange ? { range: req.ipRange } : {}),
        ...(req.gateway ? { gateway: req.gateway } : {}),
        ref,
      })
      .catch((err: unknown) => {
        throw ipamFlagError(err, req);
      });
    const others = pool.refs.filter((r) => r !== ref);
    if (others.length > 0) {
      if (!held) await this.deps.ipam.releasePool(pool.poolId, ref);
      throw new NetworkAdminError('subnet-in-use', `--subnet ${JSON.stringify(pool.cidr)}: pool ${pool.poolId} is in use (held by ${others.join(', ')})`);
    }
    return { pool, held };
  }

  /** Drop this name's ref on the pool (the pool and its allocations go with the last ref). */
  private async releasePool(pool: PoolInfo, name: string): Promise<void> {
    if (pool.refs.includes(poolRefOf(name))) await this.deps.ipam.releasePool(pool.poolId, poolRefOf(name));
  }

  private async removeNow(ref: string): Promise<NetworkRecord> {
    const nets = await this.records.listNetworks();
    const net = findNetwork(nets, ref);
    if (!net.id.startsWith('cni:')) {
      throw new NetworkAdminError('docker-network', `network ${net.name ?? net.id} was created through Docker (id ${net.id}): remove it with docker network rm`);
    }
    // Under the mark, an endpoint recorded from now on backs out (RecordStore.createEndpoint),
    // and one recorded before is in the list below: none slips in between check and delete.
    await this.records.updateNetwork(net.id, (cur) => ({ ...cur, removing: new Date().toISOString() }));
    let removed = false;
    try {
      const eps = await this.records.listEndpoints(net.id);
      if (eps.length > 0) {
        const names = eps.map((e) => e.names[0] ?? e.containerId ?? e.id).slice(0, 5).join(', ');
        throw new NetworkAdminError('active-endpoints', `error while removing network: network ${net.name ?? net.id} id ${net.id} has active endpoints (${eps.length}: ${names})`);
      }
      if (net.driver === 'overlay') await this.deps.overlay.deleteNetwork(net.id);
      else if (net.driver === 'host') await this.deps.host.deleteNetwork(net.id);
      else await this.deps.bridge.deleteNetwork(net.id);
      removed = true;
    } finally {
      if (!removed) await this.unmark(net.id);
    }
    if (net.name !== undefined) await this.releasePools(net, nets);
    this.deps.log.info({ network: net.id, name: net.name, driver: net.driver }, 'network removed (local API)');
    return net;
  }

  /** Take a refused or failed removal's mark off the network (if it is still there). */
  private async unmark(id: string): Promise<void> {
    await this.records
      .updateNetwork(id, (cur) => {
        if (cur.removing === undefined) return cur;
        const { removing: _, ...rest } = cur;
        return rest;
      })
      .catch((err: Error) => this.deps.log.warn({ network: id, err: err.message }, 'could not clear the removal mark (it lapses by itself)'));
  }

  /** The network's pools, unless a same-named network (a CNI bridge network of another host) still uses them. */
  private async releasePools(net: NetworkRecord, nets: NetworkRecord[]): Promise<void> {
    const ref = poolRefOf(net.name!);
    const shared = (subnet: string) => nets.some((n) => n.id !== net.id && n.name === net.name && n.subnets.includes(subnet));
    for (const pool of await this.deps.ipam.listPools()) {
      if (pool.refs.includes(ref) && net.subnets.includes(pool.cidr) && !shared(pool.cidr)) await this.deps.ipam.releasePool(pool.poolId, ref);
    }
  }
}

/** The body of POST /v1/networks, shape-checked; each bad field named by its flag. */
export function checkRequest(body: unknown): NetworkCreateRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('request', body, 'expected a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.name !== 'string' || !NAME.test(b.name)) {
    throw bad('NAME', b.name ?? null, 'expected 1–64 letters, digits, "_", "." or "-", starting with a letter or digit');
  }
  if (typeof b.driver !== 'string' || !(DRIVERS as readonly string[]).includes(b.driver)) {
    throw bad('--driver', b.driver ?? null, `unknown driver (known: ${DRIVERS.join(', ')})`);
  }
  const out: NetworkCreateRequest = { name: b.name, driver: b.driver as CliDriver, internal: b.internal === true };
  if (b.internal !== undefined && typeof b.internal !== 'boolean') throw bad('--internal', b.internal, 'expected a boolean');
  const text = (flag: string, v: unknown) => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') throw bad(flag, v, 'expected a non-empty string');
    return v;
  };
  const subnet = text('--subnet', b.subnet);
  const gateway = text('--gateway', b.gateway);
  const ipRange = text('--ip-range', b.ipRange);
  if (subnet !== undefined) {
    try {
      out.subnet = cidr.formatCidr(cidr.parseCidr(subnet, '--subnet'));
    } catch (err) {
      throw bad('--subnet', subnet, `${(err as Error).message.replace(/^invalid --subnet ".*?": /, '')} (expected a CIDR like 10.20.0.0/24)`);
    }
  }
  if ((gateway !== undefined || ipRange !== undefined) && out.subnet === undefined) {
    throw bad(gateway !== undefined ? '--gateway' : '--ip-range', gateway ?? ipRange, 'needs --subnet');
  }
  if (gateway !== undefined) out.gateway = inside('--gateway', gateway, out.subnet!, () => cidr.parseAddress(gateway, '--gateway'));
  if (ipRange !== undefined) out.ipRange = inside('--ip-range', ipRange, out.subnet!, () => cidr.parseCidr(ipRange, '--ip-range'));
  if (out.driver === 'tshost' && (out.subnet || out.internal)) {
    throw bad(out.subnet ? '--subnet' : '--internal', out.subnet ?? true, 'tshost networks use the host\'s own stack: no subnet, never internal');
  }
  if (b.options !== undefined) {
    if (typeof b.options !== 'object' || b.options === null || Array.isArray(b.options) || Object.values(b.options).some((v) => typeof v !== 'string')) {
      throw bad('-o', b.options, 'expected key=value strings');
    }
    out.options = { ...(b.options as Record<string, string>) };
  }
  return out;
}

/** An address or CIDR flag that must parse and lie inside the subnet; its canonical text. */
function inside(flag: string, value: string, subnet: string, parse: () => cidr.Addr | cidr.Cidr): string {
  let v: cidr.Addr | cidr.Cidr;
  try {
    v = parse();
  } catch {
    throw bad(flag, value, flag === '--gateway' ? 'not an IP address' : 'not a CIDR without host bits');
  }
  const s = cidr.parseCidr(subnet);
  const first = 'prefix' in v ? { family: v.family, value: cidr.cidrInterval(v).start } : v;
  const last = 'prefix' in v ? { family: v.family, value: cidr.cidrInterval(v).end } : v;
  if (first.family !== s.family || !cidr.cidrContains(s, first) || !cidr.cidrContains(s, last)) throw bad(flag, value, `outside --subnet ${subnet}`);
  return 'prefix' in v ? cidr.formatCidr(v) : cidr.formatAddr(v);
}

function assertNoOverlap(nets: readonly NetworkRecord[], subnet: string): void {
  const mine = cidr.parseCidr(subnet);
  for (const n of nets) {
    const hit = n.subnets.find((s) => cidr.cidrsOverlap(cidr.parseCidr(s), mine));
    if (hit) throw new NetworkAdminError('subnet-in-use', `--subnet ${JSON.stringify(subnet)}: overlaps ${hit} of network ${n.name ?? n.id}`);
  }
}

/** Run the driver's parser on the request (a placeholder subnet when none is given yet). */
function dryParse(req: NetworkCreateRequest, id: string, options: Record<string, string>): void {
  try {
    if (req.driver === 'tshost') {
      parseHostNetwork({ id, name: req.name, options });
      return;
    }
    const subnet = req.subnet ?? '10.0.0.0/24';
    const c = cidr.parseCidr(subnet);
    // The pool's gateway: the one given, else the first usable address (none in a /32 or /128).
    const first = cidr.usableBounds(c);
    const gateway = req.gateway ?? (first.start < first.end ? cidr.formatAddress(c.family, first.start) : undefined);
    const input = { id, name: req.name, subnets: [{ subnet, ...(gateway ? { gateway } : {}) }], internal: req.internal === true, options };
    if (req.driver === 'tsoverlay') parseOverlayNetwork(input);
    else parseBridgeNetwork(input);
  } catch (err) {
    throw optionError(err, req);
  }
}

/** A driver's invalid-config said with the flag the user typed (`-o key=value`, `--subnet`, `--gateway`). */
function optionError(err: unknown, req: NetworkCreateRequest): unknown {
  if (isDriverError(err, 'bridge-in-use')) return new NetworkAdminError('bridge-in-use', `-o ${JSON.stringify(`bridge=${String(err.details.value)}`)}: ${err.message}`);
  if (!isDriverError(err, 'invalid-config')) return err;
  const { field, value } = err.details;
  const why = err.message.replace(/^invalid .*?: /, '');
  if (field !== undefined && optionKeys(req.driver).includes(field)) return bad('-o', `${field}=${String(value)}`, why);
  if (field?.endsWith('.gateway')) return bad('--gateway', value, why);
  if (field === 'ipv6' || field?.startsWith('subnets')) return bad('--subnet', req.subnet ?? value, why);
  return err;
}

/** IPAM refusals of the pool request, said with the flag that caused them. */
function ipamFlagError(err: unknown, req: NetworkCreateRequest): unknown {
  const code = (err as { code?: unknown }).code;
  const msg = (err as Error).message;
  if (code === 'pool-overlap' || code === 'pool-conflict') return new NetworkAdminError('subnet-in-use', `--subnet ${JSON.stringify(req.subnet ?? '')}: ${msg}`);
  if (code === 'invalid-gateway' || code === 'gateway-outside-subnet') return bad('--gateway', req.gateway, msg);
  if (code === 'invalid-range' || code === 'range-outside-subnet') return bad('--ip-range', req.ipRange, msg);
  if (code === 'invalid-cidr') return bad('--subnet', req.subnet, msg);
  return err;
}
