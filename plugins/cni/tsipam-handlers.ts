// tsipam's verbs over the IPAM and the store: ADD allocates one address per range set for
// the owner (network, container, ifname), DEL releases by owner, CHECK compares, STATUS
// probes the store, GC frees what the runtime no longer lists. Loaded only when no daemon
// takes the request (or by the daemon itself, with its own context).
import { Ipam, IpamError, isIpamError, ownerForCni, parseOwner, type AddressResult, type PoolInfo } from '../../ipam/index.js';
import { cidr as cidrMath } from '../../ipam/index.js';
import type { Store } from '../../store/types.js';
import { type CniContext, withStore } from './context.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { parseTsipamConf, readResolvConf, storeUrlOf, type TsipamConf, type TsipamRange } from './ipam-conf.js';
import type { CniRequest, PluginHandlers } from './skel.js';
import type { IpConfig, Result } from './types.js';

/** The IPAM owner of an attachment: CNI network name + container ID + ifname. */
export function cniOwner(req: Pick<CniRequest, 'conf' | 'env'>): string {
  return ownerForCni(req.conf.name, req.env.containerId, req.env.ifname);
}

/** Address spaces: the embedded store is this host's ("local"), etcd is shared ("global"). */
export function addressSpaceOf(storeUrl: string): 'local' | 'global' {
  return storeUrl.startsWith('sqlite:') ? 'local' : 'global';
}

/** The pool ref tsipam holds for a network (pools are shared per network, never released by tsipam). */
function poolRef(network: string): string {
  return `cni:${network}`;
}

interface Located {
  set: number;
  range: TsipamRange;
  address: string;
}

function contains(r: TsipamRange, address: string): 'in' | 'subnet' | 'out' {
  const a = cidrMath.parseAddress(address);
  const c = cidrMath.parseCidr(r.subnet);
  if (!cidrMath.cidrContains(c, a)) return 'out';
  if (!r.range) return 'in';
  const s = cidrMath.parseAddress(r.range.start).value;
  const e = cidrMath.parseAddress(r.range.end).value;
  return a.value >= s && a.value <= e ? 'in' : 'subnet';
}

/**
 * Place each requested address (runtimeConfig.ips / args.cni.ips / CNI_ARGS IP) in its
 * range set. CniError 7 when it lies in no range or two land in the same set.
 */
export function locateRequested(sets: TsipamRange[][], requested: string[]): Map<number, Located> {
  const out = new Map<number, Located>();
  for (const text of requested) {
    const address = text.split('/')[0]!;
    let found: Located | undefined;
    let inSubnet: TsipamRange | undefined;
    sets.forEach((set, i) =>
      set.forEach((r) => {
        const where = found ? 'out' : contains(r, address);
        if (where === 'in') found = { set: i, range: r, address };
        else if (where === 'subnet') inSubnet ??= r;
      }),
    );
    if (!found && inSubnet) {
      throw invalidConfig('ips', text, `requested address is outside the range ${inSubnet.range!.start}-${inSubnet.range!.end} of ${inSubnet.field}`);
    }
    if (!found) throw invalidConfig('ips', text, 'requested address is not in any range of the ipam configuration');
    if (out.has(found.set)) throw invalidConfig('ips', text, `a second requested address for range set ${found.range.field.replace(/\[\d+\]$/, '')}`);
    out.set(found.set, found);
  }
  return out;
}

function toIpConfig(a: AddressResult): IpConfig {
  const ip: IpConfig = { address: `${a.address}/${a.prefixLength}` };
  if (a.gateway) ip.gateway = a.gateway;
  return ip;
}

/** IPAM errors with no direct CNI code get one here; the rest map through toCniError. */
function mapIpamError(err: unknown): unknown {
  if (isIpamError(err, 'owner-conflict')) return new CniError(ErrorCode.AlreadyTaken, err.message);
  if (isIpamError(err, 'invalid-owner')) return new CniError(ErrorCode.InvalidEnvironment, err.message);
  return err;
}

/** The tsipam verbs with their dependencies. */
export class TsipamHandlers implements PluginHandlers {
  constructor(private readonly ctx: CniContext) {}

  /** One Ipam per store: a daemon keeps its allocator caches (blocks, cursor) across requests. */
  private readonly ipams = new WeakMap<Store, Ipam>();

  private ipam(store: Store): Ipam {
    let ipam = this.ipams.get(store);
    if (!ipam) this.ipams.set(store, (ipam = new Ipam(store, { hostId: this.ctx.hostId })));
    return ipam;
  }

  private pools(ipam: Ipam, conf: TsipamConf, network: string, set: TsipamRange[]): Promise<PoolInfo[]> {
    const space = addressSpaceOf(conf.store);
    return Promise.all(
      set.map((r) => ipam.requestPool({ space, cidr: r.subnet, ...(r.range && { range: r.range }), ...(r.gateway && { gateway: r.gateway }), ref: poolRef(network) })),
    );
  }

  /** One address from a range set: the owner's existing one, the requested one, or the first range with room. */
  private async allocate(ipam: Ipam, pools: PoolInfo[], set: TsipamRange[], owner: string, want?: Located): Promise<AddressResult> {
    if (want) {
      const i = set.indexOf(want.range);
      return ipam.requestAddress(pools[i]!.poolId, { owner, address: want.address, inRange: true });
    }
    if (pools.length > 1) {
      // A replayed ADD must not take a second address in another range of the set.
      for (const p of pools) {
        const mine = (await ipam.listAllocations(p.poolId)).find((a) => a.owner === owner);
        if (mine) return ipam.requestAddress(p.poolId, { owner, address: mine.address });
      }
    }
    for (const [i, p] of pools.entries()) {
      try {
        return await ipam.requestAddress(p.poolId, { owner });
      } catch (err) {
        if (!isIpamError(err, 'pool-exhausted') || i === pools.length - 1) throw err;
      }
    }
    throw new IpamError('pool-exhausted', `range set ${set[0]!.field} is exhausted`);
  }

  async add(req: CniRequest): Promise<Result> {
    const conf = parseTsipamConf(req.conf, req.options.ipRanges);
    for (const k of conf.ignored) this.ctx.warn(`tsipam: ipam.${k} is ignored: allocations are kept in the store ${conf.store}`);
    const owner = cniOwner(req);
    const wanted = locateRequested(conf.rangeSets, req.options.ips);
    const dns = conf.resolvConf === undefined ? undefined : await readResolvConf(conf.resolvConf);
    return withStore(this.ctx, conf.store, async (store) => {
      const ipam = this.ipam(store);
      try {
        const ips: IpConfig[] = [];
        for (const [i, set] of conf.rangeSets.entries()) {
          const pools = await this.pools(ipam, conf, req.conf.name, set);
          ips.push(toIpConfig(await this.allocate(ipam, pools, set, owner, wanted.get(i))));
        }
        const result: Result = { ips };
        if (conf.routes.length) result.routes = conf.routes;
        if (dns && Object.keys(dns).length) result.dns = dns;
        return result;
      } catch (err) {
        // SPEC §2 ADD: leave nothing behind; a runtime's DEL after this finds nothing to do.
        await ipam.releaseOwner(owner).catch(() => {});
        throw mapIpamError(err);
      }
    });
  }

  /** DEL needs no netns and no valid ranges: it releases everything the owner holds (SPEC §2 DEL: idempotent). */
  async del(req: CniRequest): Promise<void> {
    const owner = cniOwner(req);
    await withStore(this.ctx, storeUrlOf(req.conf), async (store) => {
      await this.ipam(store).releaseOwner(owner);
    });
  }

  /** The owner must hold one address per range set, and prevResult must list each of them. */
  async check(req: CniRequest): Promise<void> {
    const conf = parseTsipamConf(req.conf, req.options.ipRanges);
    const owner = cniOwner(req);
    const listed = new Set((req.prevResult?.ips ?? []).map((ip) => ip.address.split('/')[0]));
    await withStore(this.ctx, conf.store, async (store) => {
      const ipam = this.ipam(store);
      const all = await ipam.listPools(addressSpaceOf(conf.store));
      for (const set of conf.rangeSets) {
        const mine = [];
        for (const r of set) {
          const pool = all.find((p) => p.cidr === r.subnet && (r.range ? p.range?.start === r.range.start && p.range?.end === r.range.end : p.range === null));
          if (pool) mine.push(...(await ipam.listAllocations(pool.poolId)).filter((a) => a.owner === owner));
        }
        const field = set[0]!.field;
        if (mine.length === 0) throw new CniError(ErrorCode.UnknownContainer, `tsipam: no address of ${owner} in range set ${field}`);
        const a = mine[0]!;
        if (req.prevResult && !listed.has(a.address)) {
          throw new CniError(ErrorCode.Internal, `tsipam: address ${a.address} of ${owner} (range set ${field}) is missing from prevResult.ips`);
        }
      }
    });
  }

  /** 50 when the store cannot be reached (no address could be allocated). */
  async status(req: CniRequest): Promise<void> {
    const conf = parseTsipamConf(req.conf, []);
    try {
      await withStore(this.ctx, conf.store, (store) => store.revision());
    } catch (err) {
      if ((err as { kind?: unknown }).kind === 'bad-request') throw err;
      throw new CniError(ErrorCode.PluginNotAvailable, `tsipam: store ${conf.store} is unreachable`, (err as Error).message);
    }
  }

  /** Free every allocation of this network whose attachment the runtime no longer lists. */
  async gc(req: CniRequest): Promise<void> {
    const network = req.conf.name;
    const valid = new Set(req.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
    await withStore(this.ctx, storeUrlOf(req.conf), async (store) => {
      const freed = await this.ipam(store).gc({
        isOwnerValid: (owner) => {
          const o = parseOwner(owner);
          return o?.type !== 'cni' || o.network !== network || valid.has(`${o.containerId}\0${o.ifname}`);
        },
      });
      if (freed.length) this.ctx.warn(`tsipam: GC of network ${network} freed ${freed.map((f) => f.address).join(', ')}`);
    });
  }
}

/** tsipam's handlers for a context (the executable's standalone one, or the daemon's). */
export function createTsipamHandlers(ctx: CniContext): PluginHandlers {
  return new TsipamHandlers(ctx);
}
