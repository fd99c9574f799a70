// What the daemon learns from the Docker engine's API, since the plugin protocol never says it:
// (1) an endpoint's container id, name and aliases (for DNS), fetched shortly after Join;
// (2) leak GC: endpoint records and tsipam addresses of this host that the engine no longer
// knows (a daemon down while the engine rolled back, a crash mid-teardown), once older than a
// grace period that covers any call still in flight (the engine retries for 30 s).
import { cidr, type Ipam, parseOwner } from '../../../ipam/index.js';
import type { Store } from '../../../store/index.js';
import { RecordStore } from '../../drivers/common/record-store.js';
import type { EndpointRecord } from '../../drivers/common/records.js';
import type { EndpointRef, Logger } from '../backend.js';
import { dockerPoolRefPrefix } from './ipam.js';
import type { EngineClient, EngineNetwork } from './engine-client.js';

export interface EngineSyncOptions {
  engine: EngineClient;
  store: Store;
  ipam: Ipam;
  hostId: string;
  /** Deletes an endpoint with its kernel state and ports, per driver ('bridge', 'host'). */
  deleteEndpoint: (ep: EndpointRecord) => Promise<void>;
  log: Logger;
  /** Leaks younger than this are left alone (default 60 s). */
  graceMs?: number;
  now?: () => number;
}

export interface GcReport {
  endpoints: string[];
  addresses: string[];
}

/** Delays of the name look-ups after a Join (the engine records the endpoint after Join returns). */
const NAME_DELAYS = [300, 1_500, 5_000];

export class EngineSync {
  private readonly records: RecordStore;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly grace: number;
  private readonly now: () => number;

  constructor(private readonly opts: EngineSyncOptions) {
    this.records = new RecordStore(opts.store);
    this.grace = opts.graceMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Look the endpoint's container up a few times after a Join, until found (timers unref'd). */
  scheduleNames(ref: EndpointRef): void {
    const attempt = (i: number) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.learnNames(ref).then(
          (found) => !found && i + 1 < NAME_DELAYS.length && attempt(i + 1),
          (err: Error) => this.opts.log.debug({ endpoint: ref.endpointId, err: err.message }, 'container name look-up failed'),
        );
      }, NAME_DELAYS[i]);
      timer.unref();
      this.timers.add(timer);
    };
    attempt(0);
  }

  /** Record the container id, name and aliases of an endpoint; false when the engine does not show it (yet). */
  async learnNames(ref: EndpointRef): Promise<boolean> {
    const net = await this.opts.engine.network(ref.networkId);
    const entry = Object.entries(net?.Containers ?? {}).find(([, c]) => c.EndpointID === ref.endpointId);
    if (!net || !entry) return false;
    const [containerId, c] = entry;
    await this.learnNetworkName(ref.networkId, net.Name);
    const ctr = await this.opts.engine.container(containerId);
    const att = Object.values(ctr?.NetworkSettings?.Networks ?? {}).find((n) => n.EndpointID === ref.endpointId);
    const aliases = (att?.Aliases ?? []).filter((a) => a !== c.Name);
    const updated = await this.records.updateEndpoint(ref.networkId, ref.endpointId, (cur) => ({ ...cur, containerId, names: [c.Name], aliases }));
    if (updated) this.opts.log.debug({ endpoint: ref.endpointId, container: c.Name, aliases }, 'endpoint names learned');
    return updated !== undefined;
  }

  /**
   * Record the engine's name for one of our networks (CreateNetwork never carries it), so DNS
   * answers `<container>.<network name>.<domain>` rather than only the 64-hex id, which is no
   * DNS label. A global network gets the name every engine shows for it.
   */
  private async learnNetworkName(networkId: string, name: string | undefined): Promise<void> {
    if (!name || name.length > 255) return;
    const rec = await this.records.updateNetwork(networkId, (cur) => (cur.name === name ? cur : { ...cur, name }));
    if (rec) this.opts.log.debug({ network: networkId, name }, 'network name learned');
  }

  /** One GC pass (see the module comment). Throws 'unavailable' when the engine cannot be asked. */
  async gc(): Promise<GcReport> {
    const nets = await this.inspectOurs();
    const known = new Map(nets.map((n) => [n.Id, n] as const));
    const endpoints = new Set(nets.flatMap((n) => Object.values(n.Containers ?? {}).map((c) => c.EndpointID)));
    const report: GcReport = { endpoints: [], addresses: [] };
    const old = (iso: string) => this.now() - Date.parse(iso) >= this.grace;
    for (const ep of await this.records.listAllEndpoints()) {
      // Only networks the engine has: a record of another front end (CNI) is never judged here.
      if (ep.hostId !== this.opts.hostId || !known.has(ep.networkId) || endpoints.has(ep.id) || !old(ep.createdAt)) continue;
      await this.opts.deleteEndpoint(ep);
      report.endpoints.push(ep.id);
    }
    await this.gcAddresses(nets, endpoints, old, report);
    if (report.endpoints.length + report.addresses.length > 0) this.opts.log.warn({ ...report }, 'docker GC freed what the engine no longer has');
    return report;
  }

  /** Stop pending look-ups. */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Inspect every network of our drivers or our IPAM (the list answer has no Containers). */
  private async inspectOurs(): Promise<EngineNetwork[]> {
    const ours = (n: EngineNetwork) => n.Driver === 'tsbridge' || n.Driver === 'tshost' || n.Driver === 'tsoverlay' || n.IPAM?.Driver === 'tsipam';
    const out: EngineNetwork[] = [];
    for (const n of (await this.opts.engine.networks()).filter(ours)) {
      const full = await this.opts.engine.network(n.Id);
      if (full) out.push(full);
    }
    return out;
  }

  /** tsipam addresses of this host in pools the engine's networks use, that no endpoint, gateway or aux address explains. */
  private async gcAddresses(nets: EngineNetwork[], endpoints: Set<string>, old: (iso: string) => boolean, report: GcReport): Promise<void> {
    const inUse = new Map<string, Set<string>>(); // subnet → addresses the engine shows
    for (const n of nets.filter((x) => x.IPAM?.Driver === 'tsipam')) {
      for (const c of n.IPAM.Config ?? []) {
        if (!c.Subnet) continue;
        const set = inUse.get(c.Subnet) ?? new Set<string>();
        if (c.Gateway) set.add(c.Gateway);
        for (const a of Object.values(c.AuxiliaryAddresses ?? {})) set.add(a);
        inUse.set(c.Subnet, set);
      }
      for (const c of Object.values(n.Containers ?? {})) {
        for (const a of [c.IPv4Address, c.IPv6Address]) {
          const bare = a?.split('/')[0];
          if (!bare) continue;
          for (const [subnet, set] of inUse) if (contains(subnet, bare)) set.add(bare);
        }
      }
    }
    const prefix = dockerPoolRefPrefix(this.opts.hostId);
    for (const pool of await this.opts.ipam.listPools()) {
      const shown = inUse.get(pool.cidr);
      if (!shown || !pool.refs.some((r) => r.startsWith(prefix))) continue;
      const stale = (await this.opts.ipam.listAllocations(pool.poolId)).filter(
        (a) => a.host === this.opts.hostId && a.kind === 'endpoint' && old(a.time) && !shown.has(a.address) && !this.ownerKnown(a.owner, endpoints),
      );
      const owned = new Set(stale.flatMap((a) => (a.owner ? [a.owner] : [])));
      if (owned.size > 0) {
        for (const f of await this.opts.ipam.gc({ poolId: pool.poolId, isOwnerValid: (o) => !owned.has(o) })) report.addresses.push(f.address);
      }
      for (const a of stale.filter((x) => x.owner === null)) {
        if (await this.opts.ipam.releaseAddress(pool.poolId, a.address)) report.addresses.push(a.address);
      }
    }
  }

  /** An owner the engine still has (a Docker endpoint it lists), or one this GC does not judge. */
  private ownerKnown(owner: string | null, endpoints: Set<string>): boolean {
    if (owner === null) return false;
    const p = parseOwner(owner);
    return p?.type !== 'docker' || endpoints.has(p.endpointId);
  }
}

function contains(subnet: string, address: string): boolean {
  try {
    return cidr.cidrContains(cidr.parseCidr(subnet), cidr.parseAddress(address));
  } catch {
    return false;
  }
}
