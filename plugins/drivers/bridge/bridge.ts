// The bridge driver's verbs: networks (a Linux bridge + gateway + firewall rules), endpoints
// (a veth pair per endpoint) and published ports, recorded in the store. Front-end neutral: typed
// inputs only. Each ADD has one rollback path; each DEL is idempotent and best-effort.
import { isNotFound, type Kernel, type NetnsHandle } from '../../../netlink/index.js';
import type { Store } from '../../../store/index.js';
import { DriverError } from '../common/errors.js';
import type { FirewallNetwork, FirewallPort, PortBinding, PortMappingRequest } from '../common/firewall-port.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { RecordStore } from '../common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../common/records.js';
import { BridgeKernel, type AdoptedBridge } from './bridge-kernel.js';
import { checkEndpoint } from './check.js';
import {
  assertSameEndpoint,
  endpointRecord,
  configFromRecord,
  networkRecordFields,
  parseBridgeNetwork,
  parseEndpoint,
  type BridgeNetworkConfig,
  type BridgeNetworkInput,
  type EndpointInput,
} from './config.js';
import { checkTarget, joinResult, planVeth, VethJoiner, type JoinResult, type JoinTarget } from './join.js';
import { reconcileBridges, type ReconcileReport } from './reconcile.js';

export type { JoinResult, JoinTarget } from './join.js';
export type { ReconcileReport } from './reconcile.js';

/** Link groups marking the bridge driver's links: 'tsbr' and 'tsve' in ASCII. */
export const DEFAULT_LINK_GROUPS = Object.freeze({ bridge: 0x74736272, veth: 0x74737665 });

export interface BridgeDriverOptions {
  kernel: Kernel;
  store: Store;
  /** This host's id (records of other hosts are never touched). */
  hostId: string;
  /** The namespace that holds bridges and host veth ends, by path; undefined = this process's own. */
  hostNetns?: string;
  /** Network rules and published ports; without one, no rule is made (a warning says so). */
  firewall?: FirewallPort;
  log?: DriverLogger;
  /** Link groups that mark our bridges and veth host ends (default DEFAULT_LINK_GROUPS). */
  linkGroups?: { bridge: number; veth: number };
  now?: () => Date;
}

/** The bridge driver. One instance per host namespace; verbs may run concurrently on different endpoints. */
export class BridgeDriver {
  private readonly records: RecordStore;
  private readonly k: BridgeKernel;
  private readonly joiner: VethJoiner;
  private readonly log: DriverLogger;
  private readonly now: () => Date;

  constructor(private readonly opts: BridgeDriverOptions) {
    this.log = opts.log ?? silentLogger;
    this.records = new RecordStore(opts.store, (key, err) => this.log.error({ key, err: err.message }, 'skipping unreadable record'));
    this.k = new BridgeKernel(opts.kernel, opts.hostNetns, opts.linkGroups ?? DEFAULT_LINK_GROUPS, this.log);
    this.now = opts.now ?? (() => new Date());
    this.joiner = new VethJoiner(opts.kernel, this.k, (cfg) => this.realise(cfg), this.log);
  }

  /** The host namespace handle (for callers that inspect what the driver made). */
  get hostNamespace(): NetnsHandle {
    return this.k.host;
  }

  // ---- networks ----

  /**
   * Create a network: bridge (named by the option, else `tsbr-<id>`), gateway addresses,
   * sysctls, firewall rules, then the record. Idempotent for the same input; a different
   * config under the same id is 'network-exists'. Returns the record.
   */
  async createNetwork(input: BridgeNetworkInput): Promise<NetworkRecord> {
    const cfg = parseBridgeNetwork(input, this.log);
    const existing = await this.records.getNetwork(cfg.id);
    if (existing) {
      this.assertSameNetwork(existing, cfg);
      await this.realise(cfg);
      return existing;
    }
    await this.assertBridgeFree(cfg);
    const undo: (() => Promise<unknown>)[] = [];
    let done = false;
    try {
      const { adopted } = await this.realise(cfg, undo);
      const rec: NetworkRecord = { ...networkRecordFields(cfg), driver: 'bridge', scope: 'local', hostId: this.opts.hostId, createdAt: this.now().toISOString(), ...(adopted ? { adopted } : {}) };
      const out = await this.records.createNetwork(rec);
      if (!out.created) this.assertSameNetwork(out.record, cfg);
      done = true;
      this.log.info({ network: cfg.id, bridge: cfg.bridge, subnets: rec.subnets }, 'network created');
      return out.record;
    } finally {
      if (!done) await this.runUndo(undo, { network: cfg.id });
    }
  }

  /** Kernel + firewall state of a network (idempotent); pushes undo steps for what it made. */
  private async realise(cfg: BridgeNetworkConfig, undo?: (() => Promise<unknown>)[]): Promise<{ created: boolean; adopted?: AdoptedBridge }> {
    const r = await this.k.ensureNetwork(cfg);
    if (r.bridgeCreated) undo?.push(() => this.k.deleteBridge(cfg.bridge));
    else {
      // Undo runs last-first: a user's bridge gets its MTU and state back after our addresses go.
      const adopted = r.adopted;
      if (adopted) undo?.push(() => this.k.restoreBridge(cfg.bridge, adopted));
      if (r.addressesAdded.length > 0) undo?.push(() => this.k.removeAddresses(cfg.bridge, r.addressesAdded));
    }
    const fw = this.opts.firewall;
    if (fw) {
      await fw.setNetwork(firewallNetwork(cfg));
      undo?.push(() => fw.removeNetwork(cfg.id));
      await this.k.applySysctls(fw.requiredSysctls(), cfg.id);
    } else {
      this.log.warn({ network: cfg.id }, 'no firewall configured: masquerade, icc and isolation rules are not applied');
    }
    return { created: r.bridgeCreated, ...(r.adopted ? { adopted: r.adopted } : {}) };
  }

  /**
   * Delete a network: its endpoints on this host, firewall rules, the bridge (only when it
   * carries our link group; else just our gateway addresses), then the record. Missing = done.
   * A step that fails keeps the record (so a retry or reconcile finishes) and is reported.
   */
  async deleteNetwork(networkId: string): Promise<void> {
    const rec = await this.records.getNetwork(networkId);
    if (!rec) {
      // Nothing recorded: the rules may still exist if a previous delete stopped half-way.
      await this.opts.firewall?.removeNetwork(networkId);
      return;
    }
    this.assertOurs(rec);
    const cfg = configFromRecord(rec);
    const causes: string[] = [];
    for (const ep of await this.records.listEndpoints(networkId)) {
      if (ep.hostId !== this.opts.hostId) continue;
      await this.teardownEndpoint(ep, causes);
    }
    await this.step(causes, 'firewall', async () => this.opts.firewall?.removeNetwork(networkId));
    await this.step(causes, 'bridge', () => this.k.removeNetwork(cfg, rec.adopted));
    if (causes.length > 0) {
      throw new DriverError('teardown-incomplete', `network ${networkId} not fully removed: ${causes.join('; ')}`, { causes });
    }
    await this.records.deleteNetwork(networkId);
    this.log.info({ network: networkId, bridge: cfg.bridge }, 'network deleted');
  }

  /** The stored record of a network, or undefined. */
  network(networkId: string): Promise<NetworkRecord | undefined> {
    return this.records.getNetwork(networkId);
  }

  // ---- endpoints ----

  /**
   * Record an endpoint with its allocated addresses (nothing in the kernel yet). The MAC is the
   * engine's when given, else derived from the first IPv4 address (02:42:…). Idempotent for
   * the same addresses; returns the record (its `mac` and `hostVeth` are what join will use).
   */
  async createEndpoint(networkId: string, input: EndpointInput): Promise<EndpointRecord> {
    const net = await this.requireNetwork(networkId);
    const ep = parseEndpoint(input, configFromRecord(net));
    const rec = endpointRecord('bridge', ep, networkId, this.opts.hostId, this.now().toISOString());
    const out = await this.records.createEndpoint(rec);
    if (!out.created) assertSameEndpoint(out.record, rec, ep.mac);
    return out.record;
  }

  /** The stored record of an endpoint, or undefined. */
  endpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    return this.records.getEndpoint(networkId, endpointId);
  }

  /**
   * Give an endpoint its interface. engine mode: a veth pair in the host namespace, host end on
   * the bridge; the result's srcName is for the engine to move. netns mode: the pair is made
   * straight into the container as `ifname` with addresses, up, default routes (unless
   * internal or defaultRoute is false); 'interface-exists' when ifname is taken there.
   * A failure leaves no veth and the record unjoined.
   */
  async join(networkId: string, endpointId: string, target: JoinTarget): Promise<JoinResult> {
    const net = await this.requireNetwork(networkId);
    const cfg = configFromRecord(net);
    const ep = await this.requireEndpoint(networkId, endpointId);
    checkTarget(target);
    if (ep.sandbox) throw new DriverError('endpoint-joined', `endpoint ${endpointId} is already joined (${ep.sandbox.mode})`);
    const plan = planVeth(ep, target);
    const state = { created: false };
    let done = false;
    try {
      if (target.mode === 'engine') await this.joiner.engine(cfg, plan, state);
      else await this.joiner.netns(cfg, plan, target, state);
      const updated = await this.records.updateEndpoint(networkId, endpointId, (cur) => ({
        ...cur,
        hostVeth: plan.hostVeth,
        ...(target.mode === 'netns' ? { ifname: target.ifname } : {}),
        sandbox: { mode: target.mode, ...(target.mode === 'netns' ? { netnsPath: target.netnsPath } : {}), joinedAt: this.now().toISOString() },
      }));
      if (!updated) throw new DriverError('unknown-endpoint', `endpoint ${endpointId} was deleted during join`);
      done = true;
    } finally {
      if (!done && state.created) await this.runUndo([() => this.k.deleteVeth(plan.hostVeth)], { endpoint: endpointId });
    }
    return joinResult(cfg, plan, target);
  }

  /**
   * Compare an endpoint's record with the kernel (CNI CHECK): the bridge, the host end on it,
   * and in netns mode the interface inside with MAC, MTU and addresses. [] = as recorded.
   */
  async check(networkId: string, endpointId: string): Promise<string[]> {
    const net = await this.requireNetwork(networkId);
    return checkEndpoint(this.opts.kernel, this.k, configFromRecord(net), await this.requireEndpoint(networkId, endpointId));
  }

  /** Take an endpoint's interface away (the veth pair is deleted). Missing anything = done. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    const ep = await this.records.getEndpoint(networkId, endpointId);
    if (!ep) return;
    if (ep.hostVeth) await this.k.deleteVeth(ep.hostVeth);
    await this.records.updateEndpoint(networkId, endpointId, ({ sandbox: _s, ifname: _i, ...rest }) => rest);
  }

  /**
   * Remove an endpoint: published ports, veth pair, record. Missing = done; a failing step keeps
   * the record and is reported ('teardown-incomplete', retryable).
   */
  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const ep = await this.records.getEndpoint(networkId, endpointId);
    if (!ep) return;
    const causes: string[] = [];
    await this.teardownEndpoint(ep, causes);
    if (causes.length > 0) {
      throw new DriverError('teardown-incomplete', `endpoint ${endpointId} not fully removed: ${causes.join('; ')}`, { causes });
    }
  }

  private async teardownEndpoint(ep: EndpointRecord, causes: string[]): Promise<void> {
    const before = causes.length;
    if (ep.ports.length > 0 && this.opts.firewall) await this.step(causes, 'unpublish', () => this.opts.firewall!.unpublish(ep.id));
    if (ep.hostVeth) await this.step(causes, 'veth', () => this.k.deleteVeth(ep.hostVeth!));
    if (causes.length === before) await this.records.deleteEndpoint(ep.networkId, ep.id);
  }

  // ---- published ports ----

  /** Publish ports of an endpoint through the firewall; records and returns the bindings. */
  async publish(networkId: string, endpointId: string, mappings: PortMappingRequest[]): Promise<PortBinding[]> {
    const fw = this.opts.firewall;
    if (!fw) throw new DriverError('no-firewall', 'cannot publish ports: no firewall is configured');
    const ep = await this.requireEndpoint(networkId, endpointId);
    const bindings = await fw.publish(ep.id, { networkId, ...containerIps(ep), mappings });
    let done = false;
    try {
      const updated = await this.records.updateEndpoint(networkId, endpointId, (cur) => ({ ...cur, ports: bindings }));
      if (!updated) throw new DriverError('unknown-endpoint', `endpoint ${endpointId} was deleted during publish`);
      done = true;
      return bindings;
    } finally {
      if (!done) await this.runUndo([() => fw.unpublish(ep.id)], { endpoint: endpointId });
    }
  }

  /** The recorded bindings again, exactly (same host addresses and ports). */
  private async republish(ep: EndpointRecord): Promise<void> {
    const fw = this.opts.firewall;
    if (!fw || ep.ports.length === 0) return;
    const mappings = ep.ports.map((b) => ({ proto: b.proto, containerPort: b.containerPort, hostIp: b.hostIp, hostPort: b.hostPort, hostPortEnd: b.hostPort }));
    await fw.publish(ep.id, { networkId: ep.networkId, ...containerIps(ep), mappings });
  }

  /** Remove an endpoint's published ports. Missing = done. */
  async unpublish(networkId: string, endpointId: string): Promise<void> {
    await this.opts.firewall?.unpublish(endpointId);
    await this.records.updateEndpoint(networkId, endpointId, (cur) => ({ ...cur, ports: [] }));
  }

  // ---- reconcile ----

  /**
   * Bring the kernel and firewall in line with this host's records: missing bridges, addresses
   * and sysctls are made again, detached host ends re-attached, and bridges/veths carrying our
   * link groups that no record explains are deleted (unless `prune` is false: see ReconcileDeps).
   * Errors per object are collected, not thrown.
   */
  async reconcile(opts: { prune?: boolean } = {}): Promise<ReconcileReport> {
    return reconcileBridges({
      prune: opts.prune,
      hostId: this.opts.hostId,
      records: this.records,
      kernel: this.k,
      realise: async (cfg) => (await this.realise(cfg)).created,
      republish: (ep) => this.republish(ep),
      log: this.log,
    });
  }

  // ---- helpers ----

  private async requireNetwork(networkId: string): Promise<NetworkRecord> {
    const rec = await this.records.requireNetwork(networkId, 'bridge');
    this.assertOurs(rec);
    return rec;
  }

  private async requireEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord> {
    return this.records.requireEndpoint(networkId, endpointId);
  }

  private assertOurs(rec: NetworkRecord): void {
    if (rec.driver !== 'bridge') throw new DriverError('wrong-driver', `network ${rec.id} belongs to the ${rec.driver} driver`);
    if (rec.hostId !== this.opts.hostId) {
      throw new DriverError('network-other-host', `network ${rec.id} is a bridge network of host ${rec.hostId ?? '?'}, not ${this.opts.hostId}`);
    }
  }

  private assertSameNetwork(rec: NetworkRecord, cfg: BridgeNetworkConfig): void {
    this.assertOurs(rec);
    const want = networkRecordFields(cfg);
    for (const f of ['subnets', 'gateways', 'bridge', 'mtu', 'internal', 'icc', 'masquerade', 'ipv6', 'hairpin'] as const) {
      if (JSON.stringify(rec[f]) !== JSON.stringify(want[f])) {
        throw new DriverError('network-exists', `network ${cfg.id} exists with ${f} ${JSON.stringify(rec[f])}, not ${JSON.stringify(want[f])}`);
      }
    }
  }

  private async assertBridgeFree(cfg: BridgeNetworkConfig): Promise<void> {
    for (const n of await this.records.listNetworks()) {
      if (n.id !== cfg.id && n.bridge === cfg.bridge && (n.hostId === this.opts.hostId || n.scope === 'global')) {
        throw new DriverError('bridge-in-use', `bridge ${cfg.bridge} already serves network ${n.id}`, { field: 'bridge', value: cfg.bridge });
      }
    }
  }

  private async step(causes: string[], what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      // Already gone is what we wanted (kernel ENODEV, firewall 'unknown-endpoint', …).
      if (isNotFound(err) || (err as { kind?: unknown }).kind === 'not-found') return;
      causes.push(`${what}: ${(err as Error).message}`);
    }
  }

  private async runUndo(undo: (() => Promise<unknown>)[], ctx: Record<string, unknown>): Promise<void> {
    for (const fn of undo.reverse()) {
      try {
        await fn();
      } catch (err) {
        this.log.error({ ...ctx, err: (err as Error).message }, 'rollback step failed; reconcile will remove the rest');
      }
    }
  }
}

/** An endpoint's first IPv4 and IPv6 addresses, as the firewall's publish wants them. */
function containerIps(ep: EndpointRecord): { containerIp: string; containerIpv6?: string } {
  const bare = ep.addresses.map((a) => a.split('/')[0]!);
  const v6 = bare.find((a) => a.includes(':'));
  return { containerIp: bare.find((a) => !a.includes(':')) ?? '', ...(v6 ? { containerIpv6: v6 } : {}) };
}

/** The firewall's view of a network. */
export function firewallNetwork(cfg: BridgeNetworkConfig): FirewallNetwork {
  return {
    id: cfg.id,
    bridge: cfg.bridge,
    subnets: cfg.subnets.map((s) => s.cidr),
    masquerade: cfg.masquerade,
    icc: cfg.icc,
    internal: cfg.internal,
    ...(cfg.hostBindingIpv4 !== undefined ? { hostBindingIpv4: cfg.hostBindingIpv4 } : {}),
  };
}
