// The overlay driver's verbs: networks recorded cluster-wide (one VNI each), realised on a host
// when it gets its first member (bridge + VXLAN device, bridge-driver veths for containers) and
// removed with its last; remote endpoints programmed by the PeerProgrammer from the store.
import { isNotFound, type Kernel, type NetnsHandle } from '../../../netlink/index.js';
import type { Store } from '../../../store/index.js';
import { BridgeKernel } from '../bridge/bridge-kernel.js';
import { firewallNetwork } from '../bridge/bridge.js';
import { assertSameEndpoint, endpointRecord, parseEndpoint, type EndpointInput } from '../bridge/config.js';
import { checkTarget, joinResult, planVeth, VethJoiner, type JoinResult, type JoinTarget } from '../bridge/join.js';
import { DriverError } from '../common/errors.js';
import type { FirewallPort } from '../common/firewall-port.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { RecordStore } from '../common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../common/records.js';
import {
  configFromRecord,
  networkMtu,
  overlayRecord,
  parseHostConfig,
  parseOverlayNetwork,
  sameNetwork,
  vtepMac,
  type OverlayHostConfig,
  type OverlayNetworkConfig,
  type OverlayNetworkInput,
} from './config.js';
import { HostReaper } from './host-gc.js';
import { KeyedLock } from './keyed-lock.js';
import { overlayHostFields, type OverlayHostFields } from './hosts.js';
import { detectUnderlay, OverlayKernel, type Underlay } from './overlay-kernel.js';
import { PeerProgrammer } from './peers.js';
import { reconcileOverlay, type OverlayLinkGroups, type OverlayReconcileReport } from './reconcile.js';
import { VniAllocator } from './vni.js';

export type { JoinResult, JoinTarget } from '../bridge/join.js';
export type { OverlayReconcileReport } from './reconcile.js';

/** Link groups marking the overlay's links: 'tsob', 'tsov', 'tsox' in ASCII. */
export const OVERLAY_LINK_GROUPS: Readonly<OverlayLinkGroups> = Object.freeze({ bridge: 0x74736f62, veth: 0x74736f76, vxlan: 0x74736f78 });

export interface OverlayDriverOptions {
  kernel: Kernel;
  store: Store;
  hostId: string;
  /** This host's underlay (VTEP) address; null/undefined = it works alone (no remote peers). */
  advertise?: string | null;
  /** UDP port of this host's VXLAN devices (default 4789). */
  vxlanPort?: number;
  /** Milliseconds between a peer's lease expiry and the release of its endpoints (default 60 s). */
  graceMs?: number;
  /** Frees a dead host's addresses after the grace time (the daemon wires the IPAM in). */
  releaseAddresses?: (hostId: string, endpoints: EndpointRecord[]) => Promise<void>;
  /** The namespace holding bridges, VXLAN devices and host veth ends; undefined = our own. */
  hostNetns?: string;
  firewall?: FirewallPort;
  log?: DriverLogger;
  linkGroups?: OverlayLinkGroups;
  /** Control-plane retry delay (default 250 ms, doubling). */
  retryMs?: number;
  now?: () => Date;
}

interface Parts {
  underlay: Underlay;
  k: OverlayKernel;
  joiner: VethJoiner;
}

/** The overlay driver of one host. Call start() first (verbs do it when needed). */
export class OverlayDriver {
  readonly host: OverlayHostConfig;
  readonly peers: PeerProgrammer;
  private readonly records: RecordStore;
  private readonly vnis: VniAllocator;
  private readonly reaper: HostReaper;
  private readonly bridges: BridgeKernel;
  private readonly groups: OverlayLinkGroups;
  private readonly log: DriverLogger;
  private readonly now: () => Date;
  private readonly locks = new KeyedLock();
  /** Networks realised on this host by this process. */
  private readonly realised = new Set<string>();
  private started?: Promise<Parts>;
  private starting?: Promise<OverlayReconcileReport>;
  private parts?: Parts;

  constructor(private readonly opts: OverlayDriverOptions) {
    this.host = parseHostConfig({ hostId: opts.hostId, advertise: opts.advertise, vxlanPort: opts.vxlanPort, graceMs: opts.graceMs });
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? (() => new Date());
    this.groups = opts.linkGroups ?? OVERLAY_LINK_GROUPS;
    this.records = new RecordStore(opts.store, (key, err) => this.log.error({ key, err: err.message }, 'skipping unreadable record'));
    this.vnis = new VniAllocator(opts.store, { now: this.now });
    this.bridges = new BridgeKernel(opts.kernel, opts.hostNetns, { bridge: this.groups.bridge, veth: this.groups.veth }, this.log);
    this.reaper = new HostReaper({ store: opts.store, hostId: this.host.hostId, graceMs: this.host.graceMs, releaseAddresses: opts.releaseAddresses, log: this.log });
    this.peers = new PeerProgrammer({
      store: opts.store,
      hostId: this.host.hostId,
      table: { read: (n) => this.need().k.read(n), apply: (n, d) => this.need().k.apply(n, d) },
      log: this.log,
      onHostGone: (h) => this.reaper.gone(h),
      onHostBack: (h) => this.reaper.back(h),
      ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
    });
  }

  /** The host namespace handle. */
  get hostNamespace(): NetnsHandle {
    return this.bridges.host;
  }

  /** What this host publishes in its host record (advertise, VXLAN port, VTEP MAC). */
  hostFields(): OverlayHostFields {
    return overlayHostFields(this.host);
  }

  /**
   * Find the underlay (once), watch the host registry, reconcile the kernel with the store (every
   * network with members here realised, stale links removed; peers' entries fixed as they attach)
   * and start the grace timers of hosts that died while we were away. Idempotent.
   */
  start(): Promise<OverlayReconcileReport> {
    this.starting ??= (async () => {
      await this.ready();
      await this.peers.start();
      const report = await this.reconcile();
      await this.reaper.scan(new Set(this.peers.liveHosts().keys())).catch((err: Error) => this.log.warn({ err: err.message }, 'dead-host scan failed'));
      return report;
    })();
    return this.starting;
  }

  /** Stop watching (the data plane stays as it is; a restart reconciles). */
  async stop(): Promise<void> {
    this.reaper.stop();
    await this.peers.stop();
  }

  /** The underlay found at start (advertise, lower device, MTU, port). */
  get underlay(): Underlay | undefined {
    return this.parts?.underlay;
  }

  // ---- networks ----

  /**
   * Record an overlay network cluster-wide: a VNI (the `vni` option, else the lowest free one),
   * MTU (the option, else this host's underlay MTU − 50). Nothing is made in any kernel until a
   * host gets a member. Idempotent; the same id with other settings is 'network-exists'.
   */
  async createNetwork(input: OverlayNetworkInput): Promise<NetworkRecord> {
    const { underlay } = await this.ready();
    const spec = parseOverlayNetwork(input, this.log);
    const existing = await this.records.getNetwork(spec.bridge.id);
    if (existing) return this.assertSame(existing, spec);
    const id = spec.bridge.id;
    const vni = spec.vni !== undefined ? await this.vnis.claim(id, spec.vni) : await this.vnis.allocate(id);
    let keep = false;
    try {
      const out = await this.records.createNetwork(overlayRecord(spec, vni, networkMtu(spec, underlay.mtu), this.now().toISOString()));
      keep = out.record.vni === vni;
      if (!out.created) return this.assertSame(out.record, spec);
      this.log.info({ network: id, vni, mtu: out.record.mtu }, 'overlay network created');
      return out.record;
    } finally {
      // Created concurrently elsewhere with another VNI, or failed: ours goes back.
      if (!keep) await this.vnis.release(id, vni).catch((err: Error) => this.log.warn({ network: id, vni, err: err.message }, 'could not release a VNI'));
    }
  }

  /**
   * This host leaves a network: its endpoints here and its devices go. The record (and the VNI)
   * go too when no other host has endpoints on it. Missing = done.
   */
  async deleteNetwork(networkId: string): Promise<void> {
    await this.ready();
    const rec = await this.records.getNetwork(networkId);
    if (!rec) return;
    const cfg = this.configOf(rec);
    await this.locks.run(networkId, async () => {
      const causes: string[] = [];
      const eps = await this.records.listEndpoints(networkId);
      for (const ep of eps.filter((e) => e.hostId === this.host.hostId)) await this.teardownEndpoint(ep, causes);
      await this.step(causes, 'devices', () => this.unrealise(cfg));
      if (causes.length > 0) throw new DriverError('teardown-incomplete', `network ${networkId} not fully removed here: ${causes.join('; ')}`, { causes });
      const others = (await this.records.listEndpoints(networkId)).filter((e) => e.hostId !== this.host.hostId);
      if (others.length > 0) {
        this.log.info({ network: networkId, hosts: [...new Set(others.map((e) => e.hostId))] }, 'overlay network left; other hosts still have endpoints');
        return;
      }
      await this.records.deleteNetwork(networkId);
      if (rec.vni !== undefined) await this.vnis.release(networkId, rec.vni);
      this.log.info({ network: networkId, vni: rec.vni }, 'overlay network deleted');
    });
  }

  /** The stored record of a network, or undefined. */
  network(networkId: string): Promise<NetworkRecord | undefined> {
    return this.records.getNetwork(networkId);
  }

  // ---- endpoints ----

  /**
   * Record an endpoint of this host with its allocated addresses and MAC (the engine's, else
   * derived from the first IPv4 address, so peers can program it before its first packet). The
   * network is realised here first (bridge, VXLAN device, peers). Idempotent for the same input.
   */
  async createEndpoint(networkId: string, input: EndpointInput): Promise<EndpointRecord> {
    await this.ready();
    const cfg = this.configOf(await this.requireNetwork(networkId));
    const ep = parseEndpoint(input, cfg.bridge);
    const rec = endpointRecord('overlay', ep, networkId, this.host.hostId, this.now().toISOString());
    return this.locks.run(networkId, async () => {
      await this.realise(cfg);
      let out;
      try {
        out = await this.records.createEndpoint(rec);
      } catch (err) {
        await this.unrealiseIfUnused(cfg).catch(() => undefined);
        throw err;
      }
      if (!out.created) assertSameEndpoint(out.record, rec, ep.mac);
      return out.record;
    });
  }

  /** The stored record of an endpoint, or undefined. */
  endpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    return this.records.getEndpoint(networkId, endpointId);
  }

  /**
   * Give an endpoint its interface, as the bridge driver does (engine mode: a pair for the engine
   * to move; netns mode: made inside the container with addresses and a default route via the
   * distributed gateway). A failure leaves no veth and the record unjoined.
   */
  async join(networkId: string, endpointId: string, target: JoinTarget): Promise<JoinResult> {
    const { joiner } = await this.ready();
    const [net, ep] = await Promise.all([this.requireNetwork(networkId), this.requireEndpoint(networkId, endpointId)]);
    const cfg = this.configOf(net);
    checkTarget(target);
    if (ep.hostId !== this.host.hostId) throw new DriverError('endpoint-exists', `endpoint ${endpointId} belongs to host ${ep.hostId}`);
    if (ep.sandbox) throw new DriverError('endpoint-joined', `endpoint ${endpointId} is already joined (${ep.sandbox.mode})`);
    const plan = planVeth(ep, target);
    const state = { created: false };
    let done = false;
    try {
      if (target.mode === 'engine') await joiner.engine(cfg.bridge, plan, state);
      else await joiner.netns(cfg.bridge, plan, target, state);
      const updated = await this.records.updateEndpoint(networkId, endpointId, (cur) => ({
        ...cur,
        hostVeth: plan.hostVeth,
        ...(target.mode === 'netns' ? { ifname: target.ifname } : {}),
        sandbox: { mode: target.mode, ...(target.mode === 'netns' ? { netnsPath: target.netnsPath } : {}), joinedAt: this.now().toISOString() },
      }));
      if (!updated) throw new DriverError('unknown-endpoint', `endpoint ${endpointId} was deleted during join`);
      done = true;
    } finally {
      if (!done && state.created) await this.bridges.deleteVeth(plan.hostVeth).catch(() => undefined);
    }
    return joinResult(cfg.bridge, plan, target);
  }

  /** Take an endpoint's interface away. Missing anything = done. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    const ep = await this.records.getEndpoint(networkId, endpointId);
    if (!ep || ep.hostId !== this.host.hostId) return;
    if (ep.hostVeth) await this.bridges.deleteVeth(ep.hostVeth);
    await this.records.updateEndpoint(networkId, endpointId, ({ sandbox: _s, ifname: _i, ...rest }) => rest);
  }

  /**
   * Remove an endpoint of this host (veth, record; peers drop it from their watch). The network's
   * devices go with its last member here. Missing = done.
   */
  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    await this.ready();
    const ep = await this.records.getEndpoint(networkId, endpointId);
    if (!ep) return;
    if (ep.hostId !== this.host.hostId) throw new DriverError('endpoint-exists', `endpoint ${endpointId} belongs to host ${ep.hostId}; only that host removes it`);
    const rec = await this.records.getNetwork(networkId);
    await this.locks.run(networkId, async () => {
      const causes: string[] = [];
      await this.teardownEndpoint(ep, causes);
      if (causes.length === 0 && rec?.driver === 'overlay') await this.step(causes, 'devices', () => this.unrealiseIfUnused(this.configOf(rec)));
      if (causes.length > 0) throw new DriverError('teardown-incomplete', `endpoint ${endpointId} not fully removed: ${causes.join('; ')}`, { causes });
    });
  }

  // ---- reconcile ----

  /** Bring this host's kernel in line with the store (see reconcile.ts). Run before serving. */
  async reconcile(opts: { prune?: boolean } = {}): Promise<OverlayReconcileReport> {
    const { k } = await this.ready();
    return reconcileOverlay({ prune: opts.prune, hostId: this.host.hostId, records: this.records, kernel: k, groups: this.groups, realise: (cfg) => this.realise(cfg, true), log: this.log });
  }

  // ---- local realisation ----

  /**
   * Bridge, VXLAN device, firewall rules and peer programming of a network on this host. Once
   * done, later members skip the kernel (force: reconcile, or a join that found the bridge gone).
   */
  private async realise(cfg: OverlayNetworkConfig, force = false): Promise<boolean> {
    if (!force && this.realised.has(cfg.id)) return false;
    const { k, underlay } = this.need();
    const r = await k.ensure(cfg);
    const fw = this.opts.firewall;
    if (fw) {
      await fw.setNetwork(firewallNetwork(cfg.bridge));
      await this.bridges.applySysctls(fw.requiredSysctls(), cfg.id);
    } else {
      this.log.warn({ network: cfg.id }, 'no firewall configured: masquerade and isolation rules are not applied');
    }
    this.peers.attach({ id: cfg.id, vxlan: cfg.vxlan, port: underlay.port });
    // A forced pass (the periodic reconcile) reads the device's entries again: someone may have
    // removed FDB or neighbour entries (`bridge fdb del`) that the programmer believes installed.
    if (r.vxlanCreated || force) this.peers.invalidate(cfg.id);
    this.realised.add(cfg.id);
    return r.bridgeCreated || r.vxlanCreated;
  }

  private async realiseById(networkId: string): Promise<boolean> {
    return this.realise(this.configOf(await this.requireNetwork(networkId)), true);
  }

  private async unrealise(cfg: OverlayNetworkConfig): Promise<void> {
    this.realised.delete(cfg.id);
    await this.peers.detach(cfg.id);
    await this.opts.firewall?.removeNetwork(cfg.id);
    await this.need().k.remove(cfg);
  }

  private async unrealiseIfUnused(cfg: OverlayNetworkConfig): Promise<void> {
    const left = (await this.records.listEndpoints(cfg.id)).some((e) => e.hostId === this.host.hostId);
    if (!left) await this.unrealise(cfg);
  }

  private async teardownEndpoint(ep: EndpointRecord, causes: string[]): Promise<void> {
    const before = causes.length;
    if (ep.hostVeth) await this.step(causes, 'veth', () => this.bridges.deleteVeth(ep.hostVeth!));
    if (causes.length === before) await this.records.deleteEndpoint(ep.networkId, ep.id);
  }

  // ---- helpers ----

  /** The underlay and kernel recipes, found once (verbs before start() get them here too). */
  private ready(): Promise<Parts> {
    this.started ??= (async () => {
      const { advertise, vxlanPort } = this.host;
      const underlay = await detectUnderlay(this.bridges.host, advertise, vxlanPort, advertise ? vtepMac(advertise) : undefined);
      if (advertise && !underlay.dev) this.log.warn({ advertise }, 'no interface holds the advertise address; VXLAN devices get no lower device');
      const k = new OverlayKernel(this.bridges, underlay, this.groups.vxlan, this.log);
      const joiner = new VethJoiner(this.opts.kernel, this.bridges, (b) => this.realiseById(b.id), this.log);
      this.parts = { underlay, k, joiner };
      return this.parts;
    })();
    return this.started;
  }

  private need(): Parts {
    // Unreachable: networks are realised (and peers attached) only after ready() resolved.
    if (!this.parts) throw new Error('overlay driver used before its underlay was detected');
    return this.parts;
  }

  private configOf(rec: NetworkRecord): OverlayNetworkConfig {
    if (rec.driver !== 'overlay') throw new DriverError('wrong-driver', `network ${rec.id} belongs to the ${rec.driver} driver`);
    return configFromRecord(rec);
  }

  private assertSame(rec: NetworkRecord, spec: ReturnType<typeof parseOverlayNetwork>): NetworkRecord {
    if (rec.driver !== 'overlay') throw new DriverError('wrong-driver', `network ${rec.id} belongs to the ${rec.driver} driver`);
    const diff = sameNetwork(rec, spec);
    if (diff) throw new DriverError('network-exists', `network ${rec.id} exists with ${diff}`);
    return rec;
  }

  private async requireNetwork(networkId: string): Promise<NetworkRecord> {
    const rec = await this.records.requireNetwork(networkId, 'overlay');
    this.configOf(rec);
    return rec;
  }

  private async requireEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord> {
    return this.records.requireEndpoint(networkId, endpointId);
  }

  private async step(causes: string[], what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (isNotFound(err) || (err as { kind?: unknown }).kind === 'not-found') return;
      causes.push(`${what}: ${(err as Error).message}`);
    }
  }
}
