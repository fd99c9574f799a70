// Gauges computed at scrape time from the store: hosts alive, networks, endpoints per network,
// allocations and free addresses per IPAM pool, the store revision. One read serves every gauge
// of a scrape (single flight); a failed read empties them and sets tsoverlay_state_up to 0 rather
// than failing the whole scrape. Limit: each scrape reads every endpoint and allocation record.
import { Gauge, type Registry } from 'prom-client';
import { Ipam, type Allocation, type PoolInfo } from '../../ipam/index.js';
import { parseAddress } from '../../ipam/cidr.js';
import { compilePool, handoutCount, isHandout, type PoolRecord } from '../../ipam/pool.js';
import type { Store } from '../../store/types.js';
import { readTopology, type Topology } from './topology.js';

export interface StateGaugeOptions {
  /** The IPAM to list pools and allocations with (default: a read-only use of a fresh instance). */
  ipam?: Ipam;
  /** Called when a scrape-time read fails (for logging). */
  onError?: (err: Error) => void;
}

/** Per-pool figures derived from the pool and its allocations. */
export interface PoolUsage {
  poolId: string;
  cidr: string;
  /** Addresses "next free" could ever hand out (range minus gateway and reserved). */
  capacity: number;
  /** Allocations by kind (endpoint, gateway, aux). */
  allocated: Record<string, number>;
  /** Addresses still available to "next free". */
  free: number;
}

/** Capacity and free addresses of one pool given its allocations (pure). */
export function poolUsage(pool: PoolInfo, allocations: readonly Allocation[]): PoolUsage {
  const view = compilePool({
    id: pool.poolId,
    space: pool.space,
    cidr: pool.cidr,
    family: pool.v6 ? 6 : 4,
    range: pool.range,
    gateway: pool.gateway,
    gatewayExplicit: false,
    reserved: pool.reserved,
    blockPrefix: pool.blockPrefix,
    auto: pool.auto,
    refs: pool.refs,
    created: '',
    createdBy: '',
  } satisfies PoolRecord);
  const capacity = handoutCount(view);
  let used = 0n;
  const allocated: Record<string, number> = {};
  for (const a of allocations) {
    allocated[a.kind] = (allocated[a.kind] ?? 0) + 1;
    if (isHandout(view, parseAddress(a.address).value)) used++;
  }
  return { poolId: pool.poolId, cidr: pool.cidr, capacity: Number(capacity), allocated, free: Number(capacity - used) };
}

interface State {
  revision: number;
  topology: Topology;
  pools: PoolUsage[];
}

async function readState(store: Store, ipam: Ipam): Promise<State> {
  const [topology, pools, allocations, revision] = await Promise.all([readTopology(store), ipam.listPools(), ipam.listAllocations(), store.revision()]);
  const byPool = new Map<string, Allocation[]>();
  for (const a of allocations) {
    let list = byPool.get(a.poolId);
    if (!list) byPool.set(a.poolId, (list = []));
    list.push(a);
  }
  return { revision, topology, pools: pools.map((p) => poolUsage(p, byPool.get(p.poolId) ?? [])) };
}

/** Register the store-derived gauges on `registry`; they read `store` at each scrape. */
export function registerStateGauges(registry: Registry, store: Store, opts: StateGaugeOptions = {}): void {
  const ipam = opts.ipam ?? new Ipam(store, { hostId: 'metrics' });
  const registers = [registry];
  // prom-client starts every metric's collect() in the same tick of one scrape: they share one read.
  const collect = async () => {
    if (!inflight) inflight = refresh().finally(() => (inflight = undefined));
    await inflight;
  };
  let inflight: Promise<State | undefined> | undefined;
  const up = new Gauge({ name: 'tsoverlay_state_up', help: '1 when the last scrape-time read of the store succeeded', registers, collect });
  const readSeconds = new Gauge({ name: 'tsoverlay_state_read_duration_seconds', help: 'Duration of the last scrape-time read of the store', registers, collect });
  const revision = new Gauge({ name: 'tsoverlay_store_revision', help: 'Store revision at the last scrape', registers, collect });
  const hosts = new Gauge({ name: 'tsoverlay_hosts', help: 'Registered hosts, by liveness (alive = lease held)', labelNames: ['alive'], registers, collect });
  const networks = new Gauge({ name: 'tsoverlay_networks', help: 'Networks, by driver', labelNames: ['driver'], registers, collect });
  const endpoints = new Gauge({ name: 'tsoverlay_network_endpoints', help: 'Endpoints per network (all hosts)', labelNames: ['network', 'name', 'driver'], registers, collect });
  const allocs = new Gauge({ name: 'tsoverlay_ipam_pool_allocations', help: 'Allocated addresses per pool, by kind', labelNames: ['pool', 'kind'], registers, collect });
  const free = new Gauge({ name: 'tsoverlay_ipam_pool_free_addresses', help: 'Addresses still free for allocation per pool', labelNames: ['pool'], registers, collect });
  const capacity = new Gauge({ name: 'tsoverlay_ipam_pool_capacity_addresses', help: 'Addresses a pool can hand out (range minus gateway and reserved)', labelNames: ['pool'], registers, collect });
  const perScrape = [hosts, networks, endpoints, allocs, free, capacity];

  const fill = (s: State) => {
    revision.set(s.revision);
    const t = s.topology;
    hosts.set({ alive: 'true' }, t.hosts.filter((h) => h.alive).length);
    hosts.set({ alive: 'false' }, t.hosts.filter((h) => !h.alive).length);
    const perDriver = new Map<string, number>();
    const perNet = new Map<string, number>();
    for (const e of t.endpoints) perNet.set(e.networkId, (perNet.get(e.networkId) ?? 0) + 1);
    for (const n of t.networks) {
      perDriver.set(n.driver, (perDriver.get(n.driver) ?? 0) + 1);
      endpoints.set({ network: n.id, name: n.name ?? '', driver: n.driver }, perNet.get(n.id) ?? 0);
    }
    for (const [driver, n] of perDriver) networks.set({ driver }, n);
    for (const p of s.pools) {
      free.set({ pool: p.poolId }, p.free);
      capacity.set({ pool: p.poolId }, p.capacity);
      for (const [kind, n] of Object.entries(p.allocated)) allocs.set({ pool: p.poolId, kind }, n);
    }
  };

  const refresh = async (): Promise<State | undefined> => {
    const start = performance.now();
    for (const g of perScrape) g.reset();
    try {
      const s = await readState(store, ipam);
      fill(s);
      up.set(1);
      return s;
    } catch (err) {
      up.set(0);
      opts.onError?.(err as Error);
      return undefined;
    } finally {
      readSeconds.set((performance.now() - start) / 1000);
    }
  };
}
