// tsbridge's verbs over the bridge driver (netns mode): ADD = IPAM, network (once), endpoint,
// veth made straight into the container, extra routes; one rollback path releasing the IPAM
// through its DEL. DEL is idempotent and needs no netns. Loaded only when no daemon answers.
import { BridgeDriver } from '../drivers/bridge/bridge.js';
import { isDriverError } from '../drivers/common/errors.js';
import type { DriverLogger } from '../drivers/common/log.js';
import type { NetworkRecord } from '../drivers/common/records.js';
import { cidr as cidrMath } from '../../ipam/index.js';
import { isExists } from '../../netlink/index.js';
import type { Firewall } from '../../proxy/firewall.js';
import type { Store } from '../../store/types.js';
import { bridgeEndpointId, bridgeNetworkId, parseTsbridgeConf, type TsbridgeConf } from './bridge-conf.js';
import { confString, DEFAULT_STORE_URL, withStore, type CniContext } from './context.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { IpamRunner } from './ipam-runner.js';
import { extendResult } from './result.js';
import type { CniRequest, PluginHandlers } from './skel.js';
import type { IpConfig, Result, Route } from './types.js';

const DEFAULT_DST: Record<4 | 6, string> = { 4: '0.0.0.0/0', 6: '::/0' };

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

/** Driver refusals that mean a bad config or a taken interface in CNI terms. */
function mapDriverError(err: unknown): unknown {
  if (isDriverError(err, 'endpoint-joined') || isDriverError(err, 'endpoint-exists')) return new CniError(ErrorCode.InterfaceExists, err.message);
  for (const code of ['network-exists', 'bridge-in-use', 'network-other-host', 'wrong-driver'] as const) {
    if (isDriverError(err, code)) return new CniError(ErrorCode.InvalidConfig, err.message);
  }
  return err;
}

/** The subnets the driver's network gets from the IPAM's addresses (gateways only with isGateway). */
export function subnetsOf(ips: readonly IpConfig[], isGateway: boolean): { subnet: string; gateway?: string }[] {
  const out = new Map<string, { subnet: string; gateway?: string }>();
  for (const ip of ips) {
    const c = cidrMath.parseCidr(ip.address, 'address', { allowHostBits: true });
    const subnet = cidrMath.formatCidr(c);
    if (out.has(subnet)) continue;
    const gateway = ip.gateway ?? (isGateway ? cidrMath.formatAddress(c.family, cidrMath.usableBounds(c).start) : undefined);
    out.set(subnet, isGateway && gateway ? { subnet, gateway } : { subnet });
  }
  return [...out.values()];
}

/** A network recorded earlier must match this config: changing it needs its containers gone first. */
function assertSameNetwork(rec: NetworkRecord, conf: TsbridgeConf, subnets: { subnet: string; gateway?: string }[] = []): void {
  const want: Array<[string, unknown, unknown]> = [
    ['bridge', conf.bridge ?? rec.bridge, rec.bridge],
    ['mtu', conf.mtu ?? 1500, rec.mtu ?? 1500],
    ['ipMasq', conf.ipMasq, rec.masquerade],
    ['hairpinMode', conf.hairpinMode, rec.hairpin ?? false],
    ['isGateway', conf.isGateway, rec.gateways.length > 0],
  ];
  for (const [field, value, have] of want) {
    if (value !== have) throw invalidConfig(field, value, `network ${conf.network} exists on this host with ${field} ${JSON.stringify(have)}`);
  }
  for (const s of subnets) {
    if (!rec.subnets.includes(s.subnet)) throw invalidConfig('ipam', s.subnet, `network ${conf.network} exists on this host with subnets ${rec.subnets.join(', ')}`);
  }
}

/** The tsbridge verbs with their dependencies. */
export class TsbridgeHandlers implements PluginHandlers {
  private readonly log: DriverLogger;

  constructor(private readonly ctx: CniContext) {
    const warn = (obj: Record<string, unknown>, msg: string) => ctx.warn(`tsbridge: ${msg} ${JSON.stringify(obj)}`);
    this.log = { debug: () => {}, info: () => {}, warn, error: warn };
  }

  /** Drivers without a firewall are kept per store: a daemon's keeps its bridge ifindex cache. */
  private readonly drivers = new WeakMap<Store, BridgeDriver>();

  private async driver(store: Store, firewall?: Firewall): Promise<BridgeDriver> {
    if (!firewall && this.drivers.has(store)) return this.drivers.get(store)!;
    const drv = new BridgeDriver({ kernel: await this.ctx.kernel(), store, hostId: this.ctx.hostId, log: this.log, ...(firewall ? { firewall } : {}) });
    if (!firewall) this.drivers.set(store, drv);
    return drv;
  }

  /** Network creations in flight in this process, by store URL and network id (single-flight). */
  private readonly creating = new Map<string, Promise<void>>();

  /** tsipam in-process, kept for the life of these handlers (a daemon keeps its allocator caches). */
  private tsipam?: Promise<PluginHandlers>;

  private ipamOf(req: CniRequest): IpamRunner {
    return new IpamRunner(this.ctx, req, () => (this.tsipam ??= import('./tsipam-handlers.js').then((m) => m.createTsipamHandlers(this.ctx))));
  }

  private ids(req: CniRequest): { networkId: string; endpointId: string } {
    return { networkId: bridgeNetworkId(req.conf.name, this.ctx.hostId), endpointId: bridgeEndpointId(req.env.containerId, req.env.ifname) };
  }

  async add(req: CniRequest): Promise<Result> {
    const conf = parseTsbridgeConf(req.conf);
    const { networkId, endpointId } = this.ids(req);
    return withStore(this.ctx, conf.store, async (store) => {
      const drv = await this.driver(store);
      const existing = await drv.network(networkId);
      // A changed config is refused before anything is allocated.
      if (existing) assertSameNetwork(existing, conf);
      await this.clearStale(drv, req, networkId, endpointId);
      const ipam = this.ipamOf(req);
      const allocated = await ipam.add();
      let done = false;
      try {
        const result = await this.attach(store, drv, conf, req, allocated);
        done = true;
        return result;
      } catch (err) {
        throw mapDriverError(err);
      } finally {
        if (!done) {
          // SPEC §2 ADD failure: undo in reverse — the interface and record, then the IPAM (its DEL).
          await drv.deleteEndpoint(networkId, endpointId).catch((e: Error) => this.ctx.warn(`tsbridge: rollback: ${e.message}`));
          await ipam.run('DEL').catch((e: Error) => this.ctx.warn(`tsbridge: rollback of ${conf.ipamType}: ${e.message}`));
        }
      }
    });
  }

  /** 102 for a live attachment of this container and ifname; a stale record (no interface any more) is removed. */
  private async clearStale(drv: BridgeDriver, req: CniRequest, networkId: string, endpointId: string): Promise<void> {
    const ep = await drv.endpoint(networkId, endpointId);
    if (!ep) return;
    if (ep.sandbox?.netnsPath === req.env.netns) {
      const live = await (await this.ctx.kernel()).ns(req.env.netns).link(req.env.ifname).catch(() => null);
      if (live) throw new CniError(ErrorCode.InterfaceExists, `interface ${req.env.ifname} of container ${req.env.containerId} already exists in ${req.env.netns}`);
    }
    await drv.deleteEndpoint(networkId, endpointId);
  }

  private async attach(store: Store, drv: BridgeDriver, conf: TsbridgeConf, req: CniRequest, allocated: Result): Promise<Result> {
    const ips = allocated.ips ?? [];
    if (ips.length === 0) throw new CniError(ErrorCode.InvalidConfig, `IPAM plugin ${conf.ipamType} returned no address`);
    const { networkId, endpointId } = this.ids(req);
    const subnets = subnetsOf(ips, conf.isGateway);
    const key = `${conf.store}\n${networkId}`;
    let existing = await drv.network(networkId);
    if (!existing && this.creating.has(key)) {
      // Concurrent first ADDs of a network (a daemon, 100 pods at once) wait for one creation
      // instead of each re-applying the bridge and the host's firewall rules.
      await this.creating.get(key)!.catch(() => undefined);
      existing = await drv.network(networkId);
    }
    if (existing) assertSameNetwork(existing, conf, subnets);
    else {
      const making = this.createNetwork(store, conf, networkId, subnets);
      this.creating.set(key, making);
      try {
        await making;
      } finally {
        if (this.creating.get(key) === making) this.creating.delete(key);
      }
    }
    const routes = allocated.routes ?? [];
    const defaultRoute = conf.isGateway && (conf.isDefaultGateway || routes.some((r) => isDefaultVia(r, ips)));
    await drv.createEndpoint(networkId, {
      id: endpointId,
      addresses: ips.map((ip) => ip.address),
      containerId: req.env.containerId,
      ...(req.options.mac ? { mac: req.options.mac } : {}),
      ...(req.options.k8s.name ? { names: [req.options.k8s.name] } : {}),
      aliases: req.options.aliases,
    });
    const target = { mode: 'netns' as const, netnsPath: req.env.netns, ifname: req.env.ifname };
    const joined = await drv.join(networkId, endpointId, { ...target, defaultRoute }).catch((err: unknown) => {
      // A second interface (podman network connect): the container has its default route
      // already. As the reference bridge does, the first one wins: join again without ours.
      if (!defaultRoute || !isExists(err) || !/\broute\b/.test(String((err as { details?: { line?: unknown } }).details?.line ?? ''))) throw err;
      return drv.join(networkId, endpointId, { ...target, defaultRoute: false });
    });
    const extra = routes.filter((r) => !(defaultRoute && isDefaultVia(r, ips)));
    if (extra.length) await this.addRoutes(req, extra, ips);
    const bridge = (existing?.bridge ?? (await drv.network(networkId))?.bridge)!;
    const gateways = subnets.flatMap((s) => (s.gateway ? [s.gateway] : []));
    const add: Result = {
      interfaces: [{ name: bridge }, { name: joined.hostVeth }, { name: req.env.ifname, mac: joined.mac, mtu: joined.mtu, sandbox: req.env.netns }],
      ips: ips.map((ip) => ({ ...ip, interface: 2 })),
      routes: [...routes, ...(conf.isDefaultGateway ? defaultRoutes(routes, gateways) : [])],
    };
    const dns = allocated.dns ?? {};
    // The gateway answers DNS for the network's names (the daemon's resolver listens there).
    if (conf.isGateway && gateways.length) add.dns = { ...dns, nameservers: [...new Set([...gateways, ...(dns.nameservers ?? [])])] };
    else if (Object.keys(dns).length) add.dns = dns;
    return extendResult(req.prevResult, add);
  }

  /** The network, its bridge and its firewall rules, made under the host firewall lock. */
  private async createNetwork(store: Store, conf: TsbridgeConf, networkId: string, subnets: { subnet: string; gateway?: string }[]): Promise<void> {
    const options: Record<string, unknown> = { masquerade: conf.ipMasq, hairpin: conf.hairpinMode, icc: true };
    if (conf.bridge) options.bridge = conf.bridge;
    if (conf.mtu) options.mtu = conf.mtu;
    try {
      await this.ctx.withFirewall(store, async (fw) => {
        const drv = await this.driver(store, fw);
        await drv.createNetwork({ id: networkId, name: conf.network, subnets, options });
      });
    } catch (err) {
      // The rules could not be applied after the record was written: take the network away
      // again unless another ADD already joined it (then a later ADD or reconcile repairs it).
      const drv = await this.driver(store);
      const { RecordStore } = await import('../drivers/common/record-store.js');
      if ((await new RecordStore(store).listEndpoints(networkId)).length === 0) await drv.deleteNetwork(networkId).catch(() => undefined);
      throw err;
    }
  }

  private async addRoutes(req: CniRequest, routes: Route[], ips: IpConfig[]): Promise<void> {
    const ctr = (await this.ctx.kernel()).ns(req.env.netns);
    await ctr.batch((b) => {
      for (const r of routes) {
        const fam = familyOf(r.dst);
        const via = r.gw ?? ips.find((ip) => familyOf(ip.address) === fam)?.gateway;
        b.routeReplace({ dst: r.dst === DEFAULT_DST[fam] ? 'default' : r.dst, ...(via ? { via } : {}), dev: req.env.ifname, family: fam });
      }
    });
  }

  /** DEL (SPEC §2): missing namespace, interface, allocation or record is success; needs no netns. */
  async del(req: CniRequest): Promise<void> {
    const { networkId, endpointId } = this.ids(req);
    const store = confString(req.conf as unknown as Record<string, unknown>, 'store') ?? DEFAULT_STORE_URL;
    await withStore(this.ctx, store, async (s) => {
      // Independent, so at once (the veth's deletion waits on the kernel for ~10–30 ms): the
      // allocation is released even when the interface could not be removed (a retry finishes).
      const [ep, ipam] = await Promise.allSettled([
        this.driver(s).then((drv) => drv.deleteEndpoint(networkId, endpointId)),
        req.conf.ipam?.type ? this.ipamOf(req).run('DEL') : Promise.resolve(),
      ]);
      if (ep.status === 'rejected') throw ep.reason;
      if (ipam.status === 'rejected') throw ipam.reason;
    });
  }

  /** CHECK: prevResult against the live namespace, the host side, the firewall rules and the IPAM. */
  async check(req: CniRequest): Promise<void> {
    const conf = parseTsbridgeConf(req.conf);
    if (!req.prevResult) throw invalidConfig('prevResult', null, 'CHECK needs the result of ADD');
    const { networkId, endpointId } = this.ids(req);
    await withStore(this.ctx, conf.store, async (store) => {
      const drv = await this.driver(store);
      const { checkBridgeAttachment } = await import('./bridge-check.js');
      await checkBridgeAttachment({ kernel: await this.ctx.kernel(), drv, req, networkId, endpointId });
      await this.ipamOf(req).run('CHECK');
    });
  }

  /** STATUS (SPEC 1.1): 50 without a reachable store; the IPAM's own STATUS otherwise. */
  async status(req: CniRequest): Promise<void> {
    const conf = parseTsbridgeConf(req.conf);
    try {
      await withStore(this.ctx, conf.store, (s) => s.revision());
    } catch (err) {
      if ((err as { kind?: unknown }).kind === 'bad-request') throw err;
      throw new CniError(ErrorCode.PluginNotAvailable, `tsbridge: store ${conf.store} is unreachable`, (err as Error).message);
    }
    await this.ipamOf(req).run('STATUS');
  }

  /** GC (SPEC 1.1): the IPAM's GC, then this network's endpoints on this host that are not listed. */
  async gc(req: CniRequest): Promise<void> {
    const conf = parseTsbridgeConf(req.conf);
    await this.ipamOf(req).run('GC');
    const valid = new Set(req.validAttachments.map((a) => bridgeEndpointId(a.containerID, a.ifname)));
    const networkId = bridgeNetworkId(req.conf.name, this.ctx.hostId);
    await withStore(this.ctx, conf.store, async (store) => {
      const drv = await this.driver(store);
      const { RecordStore } = await import('../drivers/common/record-store.js');
      for (const ep of await new RecordStore(store).listEndpoints(networkId)) {
        if (ep.hostId === this.ctx.hostId && !valid.has(ep.id)) await drv.deleteEndpoint(networkId, ep.id);
      }
    });
  }
}

/** A default route the driver makes: no gateway, or the gateway of its family. */
function isDefaultVia(r: Route, ips: readonly IpConfig[]): boolean {
  const fam = familyOf(r.dst);
  if (r.dst !== DEFAULT_DST[fam]) return false;
  return r.gw === undefined || ips.some((ip) => ip.gateway === r.gw);
}

/** isDefaultGateway's routes for families that have none yet (as the reference bridge reports them). */
function defaultRoutes(routes: readonly Route[], gateways: readonly string[]): Route[] {
  const out: Route[] = [];
  for (const gw of gateways) {
    const fam = familyOf(gw);
    if (!routes.some((r) => r.dst === DEFAULT_DST[fam])) out.push({ dst: DEFAULT_DST[fam], gw });
  }
  return out;
}

/** tsbridge's handlers for a context. */
export function createTsbridgeHandlers(ctx: CniContext): PluginHandlers {
  return new TsbridgeHandlers(ctx);
}
