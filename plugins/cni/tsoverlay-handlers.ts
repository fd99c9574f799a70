// tsoverlay's CNI verbs over the daemon's overlay driver (netns mode): ADD = IPAM, the network
// (recorded once cluster-wide), endpoint, veth made straight into the container; one rollback
// path through the IPAM's DEL. The overlay needs the daemon (its peer programmer is long-lived):
// without one, ADD is refused (11) and DEL still cleans up this host with a one-shot driver.
import { isDriverError } from '../drivers/common/errors.js';
import type { OverlayDriver } from '../drivers/overlay/overlay.js';
import { bridgeEndpointId } from './bridge-conf.js';
import { confString, DEFAULT_DAEMON_SOCKET, DEFAULT_STORE_URL, withStore, type CniContext } from './context.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { IpamRunner, ipamType } from './ipam-runner.js';
import { extendResult } from './result.js';
import type { CniRequest, PluginHandlers } from './skel.js';
import { subnetsOf } from './tsbridge-handlers.js';
import type { Result } from './types.js';

/** The daemon's overlay driver and the store URL it runs on. */
export interface OverlayBinding {
  driver: OverlayDriver;
  storeUrl: string;
}

/** The validated plugin object of a tsoverlay config. */
export interface TsoverlayConf {
  network: string;
  /**
   * The overlay network joined: the config's `networkId` (an existing network, e.g. one made
   * with `docker network create -d tsoverlay`, so CNI and Docker containers share it), else
   * one per CNI network name (`overlayNetworkId(name)`).
   */
  networkId: string;
  /** True when `networkId` came from the config (the network must exist). */
  existing: boolean;
  /** Driver options: vni, mtu, bridge, masquerade. */
  options: Record<string, string | number | boolean>;
  /** The config's `store`, when given. */
  store?: string;
  daemonSocket: string;
}

type Obj = Record<string, unknown>;

/** Validate a tsoverlay config (7 naming the key and value). */
export function parseTsoverlayConf(conf: CniRequest['conf']): TsoverlayConf {
  const o = conf as unknown as Obj;
  ipamType({ conf });
  const options: TsoverlayConf['options'] = {};
  for (const key of ['vni', 'mtu'] as const) {
    if (o[key] === undefined || o[key] === 0) continue;
    if (typeof o[key] !== 'number' || !Number.isInteger(o[key])) throw invalidConfig(key, o[key], 'not an integer');
    options[key] = o[key] as number;
  }
  if (o.ipMasq !== undefined) {
    if (typeof o.ipMasq !== 'boolean') throw invalidConfig('ipMasq', o.ipMasq, 'not a boolean');
    options.masquerade = o.ipMasq;
  }
  if (o.bridge !== undefined && o.bridge !== '') {
    if (typeof o.bridge !== 'string') throw invalidConfig('bridge', o.bridge, 'not an interface name');
    options.bridge = o.bridge;
  }
  const store = confString(o, 'store');
  const given = o.networkId;
  if (given !== undefined && (typeof given !== 'string' || !NETWORK_ID.test(given))) throw invalidConfig('networkId', given, `not a network id (${NETWORK_ID})`);
  return {
    network: conf.name,
    networkId: given ?? overlayNetworkId(conf.name),
    existing: given !== undefined,
    options,
    ...(store ? { store } : {}),
    daemonSocket: confString(o, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET,
  };
}

/** What a `networkId` may hold: a Docker network id (64 hex) or any id our records use. */
const NETWORK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:@=+-]{0,254}$/;

/** The overlay network id of a CNI network: one per name, cluster-wide (hosts share it). */
export function overlayNetworkId(network: string): string {
  return `cni:overlay:${network}`;
}

function mapDriverError(err: unknown): unknown {
  if (isDriverError(err, 'endpoint-joined') || isDriverError(err, 'endpoint-exists') || isDriverError(err, 'interface-exists')) return new CniError(ErrorCode.InterfaceExists, err.message);
  for (const code of ['network-exists', 'wrong-driver', 'vni-taken'] as const) if (isDriverError(err, code)) return new CniError(ErrorCode.InvalidConfig, err.message);
  return err;
}

/** The tsoverlay verbs. */
export class TsoverlayHandlers implements PluginHandlers {
  constructor(
    private readonly ctx: CniContext,
    private readonly overlay?: OverlayBinding,
  ) {}

  private ids(conf: TsoverlayConf, req: CniRequest): { networkId: string; endpointId: string } {
    return { networkId: conf.networkId, endpointId: bridgeEndpointId(req.env.containerId, req.env.ifname) };
  }

  /** The daemon's driver; a config naming another store than the daemon's is refused. */
  private bound(conf: TsoverlayConf): OverlayDriver {
    if (!this.overlay) {
      throw new CniError(ErrorCode.TryAgainLater, `tsoverlay needs the tsoverlay daemon on this host (nothing answered on ${conf.daemonSocket})`);
    }
    if (conf.store && conf.store !== this.overlay.storeUrl) {
      throw invalidConfig('store', conf.store, `the tsoverlay daemon on this host uses ${this.overlay.storeUrl}`);
    }
    return this.overlay.driver;
  }

  async add(req: CniRequest): Promise<Result> {
    const conf = parseTsoverlayConf(req.conf);
    const drv = this.bound(conf);
    const { networkId, endpointId } = this.ids(conf, req);
    if (conf.existing && !(await drv.network(networkId))) {
      throw invalidConfig('networkId', networkId, 'no such overlay network (create it first, e.g. docker network create -d tsoverlay)');
    }
    const stale = await drv.endpoint(networkId, endpointId);
    if (stale) {
      const live = stale.sandbox?.netnsPath === req.env.netns && (await (await this.ctx.kernel()).ns(req.env.netns).link(req.env.ifname).catch(() => null));
      if (live) throw new CniError(ErrorCode.InterfaceExists, `interface ${req.env.ifname} of container ${req.env.containerId} already exists in ${req.env.netns}`);
      await drv.deleteEndpoint(networkId, endpointId);
    }
    const ipam = new IpamRunner(this.ctx, req);
    const allocated = await ipam.add();
    let done = false;
    try {
      const result = await this.attach(drv, conf, req, allocated);
      done = true;
      return result;
    } catch (err) {
      throw mapDriverError(err);
    } finally {
      if (!done) {
        // SPEC §2 ADD failure: undo in reverse — the interface and record, then the IPAM (its DEL).
        await drv.deleteEndpoint(networkId, endpointId).catch((e: Error) => this.ctx.warn(`tsoverlay: rollback: ${e.message}`));
        await ipam.run('DEL').catch((e: Error) => this.ctx.warn(`tsoverlay: rollback of the IPAM: ${e.message}`));
      }
    }
  }

  private async attach(drv: OverlayDriver, conf: TsoverlayConf, req: CniRequest, allocated: Result): Promise<Result> {
    const ips = (allocated.ips ?? []).filter((ip) => !ip.address.includes(':'));
    if (ips.length === 0) throw new CniError(ErrorCode.InvalidConfig, `IPAM plugin ${ipamType(req)} returned no IPv4 address (tsoverlay is IPv4 only)`);
    const { networkId, endpointId } = this.ids(conf, req);
    const subnets = subnetsOf(ips, true);
    const net = await drv.createNetwork({ id: networkId, name: conf.network, subnets, options: conf.options });
    await drv.createEndpoint(networkId, {
      id: endpointId,
      addresses: ips.map((ip) => ip.address),
      containerId: req.env.containerId,
      ...(req.options.mac ? { mac: req.options.mac } : {}),
      ...(req.options.k8s.name ? { names: [req.options.k8s.name] } : {}),
      aliases: req.options.aliases,
    });
    const joined = await drv.join(networkId, endpointId, { mode: 'netns', netnsPath: req.env.netns, ifname: req.env.ifname });
    // The container gets one route, the default via the distributed gateway; others are not made.
    for (const r of allocated.routes ?? []) if (r.dst !== '0.0.0.0/0') this.ctx.warn(`tsoverlay: ignoring IPAM route ${r.dst} (only the default route is made)`);
    const gw = joined.gateways.ipv4;
    const add: Result = {
      interfaces: [{ name: net.bridge! }, { name: joined.hostVeth }, { name: req.env.ifname, mac: joined.mac, mtu: joined.mtu, sandbox: req.env.netns }],
      ips: ips.map((ip) => ({ ...ip, ...(gw ? { gateway: gw } : {}), interface: 2 })),
      routes: gw ? [{ dst: '0.0.0.0/0', gw }] : [],
    };
    const dns = allocated.dns ?? {};
    // The daemon's DNS answers on the gateway (dns/README "Pointing containers at it"), as tsbridge's result says.
    if (gw) add.dns = { ...dns, nameservers: [...new Set([gw, ...(dns.nameservers ?? [])])] };
    else if (Object.keys(dns).length) add.dns = dns;
    return extendResult(req.prevResult, add);
  }

  /** DEL (SPEC §2): missing anything is success; without the daemon, a one-shot driver cleans this host. */
  async del(req: CniRequest): Promise<void> {
    const conf = parseTsoverlayConf(req.conf);
    const { networkId, endpointId } = this.ids(conf, req);
    const failures: unknown[] = [];
    if (this.overlay) {
      await this.bound(conf).deleteEndpoint(networkId, endpointId).catch((e: unknown) => failures.push(e));
    } else {
      await withStore(this.ctx, conf.store ?? DEFAULT_STORE_URL, async (store) => {
        const { OverlayDriver } = await import('../drivers/overlay/overlay.js');
        const drv = new OverlayDriver({ kernel: await this.ctx.kernel(), store, hostId: this.ctx.hostId });
        await drv.deleteEndpoint(networkId, endpointId);
      }).catch((e: unknown) => failures.push(e));
    }
    await new IpamRunner(this.ctx, req).run('DEL').catch((e: unknown) => failures.push(e));
    if (failures.length) throw failures[0];
  }

  /** CHECK: the recorded attachment against the live container interface; then the IPAM's CHECK. */
  async check(req: CniRequest): Promise<void> {
    const conf = parseTsoverlayConf(req.conf);
    if (!req.prevResult) throw invalidConfig('prevResult', null, 'CHECK needs the result of ADD');
    const drv = this.bound(conf);
    const { networkId, endpointId } = this.ids(conf, req);
    const ep = await drv.endpoint(networkId, endpointId);
    if (!ep?.sandbox) throw new CniError(ErrorCode.UnknownContainer, `tsoverlay CHECK: no attachment of container ${req.env.containerId} (${req.env.ifname}) on ${req.conf.name}`);
    const ctr = (await this.ctx.kernel()).ns(req.env.netns);
    const link = await ctr.link(req.env.ifname);
    if (!link?.up) throw new CniError(ErrorCode.Internal, `tsoverlay CHECK: interface ${req.env.ifname} is missing or down in ${req.env.netns}`);
    const live = new Set((await ctr.addresses({ dev: req.env.ifname })).map((a) => a.cidr));
    for (const a of ep.addresses) if (!live.has(a)) throw new CniError(ErrorCode.Internal, `tsoverlay CHECK: address ${a} is missing on ${req.env.ifname}`);
    await new IpamRunner(this.ctx, req).run('CHECK');
  }

  /** STATUS (SPEC 1.1): 50 without the daemon or its store. */
  async status(req: CniRequest): Promise<void> {
    const conf = parseTsoverlayConf(req.conf);
    if (!this.overlay) throw new CniError(ErrorCode.PluginNotAvailable, `tsoverlay: no daemon answered on ${conf.daemonSocket}`);
    try {
      await withStore(this.ctx, this.overlay.storeUrl, (s) => s.revision());
    } catch (err) {
      throw new CniError(ErrorCode.PluginNotAvailable, `tsoverlay: store ${this.overlay.storeUrl} is unreachable`, (err as Error).message);
    }
    await new IpamRunner(this.ctx, req).run('STATUS');
  }

  /** GC (SPEC 1.1): the IPAM's GC, then this host's endpoints of the network that are not listed. */
  async gc(req: CniRequest): Promise<void> {
    const conf = parseTsoverlayConf(req.conf);
    const drv = this.bound(conf);
    await new IpamRunner(this.ctx, req).run('GC');
    const valid = new Set(req.validAttachments.map((a) => bridgeEndpointId(a.containerID, a.ifname)));
    const networkId = conf.networkId;
    await withStore(this.ctx, this.overlay!.storeUrl, async (store) => {
      const { RecordStore } = await import('../drivers/common/record-store.js');
      for (const ep of await new RecordStore(store).listEndpoints(networkId)) {
        if (ep.hostId === this.ctx.hostId && !valid.has(ep.id)) await drv.deleteEndpoint(networkId, ep.id);
      }
    });
  }
}

/** tsoverlay's handlers for a context (and the daemon's overlay driver, when there is one). */
export function createTsoverlayHandlers(ctx: CniContext, overlay?: OverlayBinding): PluginHandlers {
  return new TsoverlayHandlers(ctx, overlay);
}
