// `tsoverlay network|endpoint|ipam inspect REF…`: the full stored records as JSON (like
// `docker network inspect`), read from the store directly; every REF must resolve or nothing prints.
import { Ipam, type Allocation, type PoolInfo } from '../../ipam/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../../plugins/drivers/common/records.js';
import { findEndpoint, RecordError } from '../../plugins/drivers/common/link-records.js';
import { findNetwork } from './links-services.js';
import { withStore, type LsOptions } from './ls.js';

const printJson = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** `tsoverlay network inspect NET…`: each network record with its endpoints (id, name, prefix). */
export function networkInspect(refs: string[], opts: LsOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = new RecordStore(store);
    const nets = await recs.listNetworks();
    const found: NetworkRecord[] = refs.map((r) => findNetwork(nets, r));
    const out = [];
    for (const n of found) out.push({ ...n, endpoints: await recs.listEndpoints(n.id) });
    printJson(out);
    return 0;
  });
}

/** `tsoverlay endpoint inspect EP…`: each endpoint record (id, name, alias, container id or a prefix of 12+). */
export function endpointInspect(refs: string[], opts: LsOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = new RecordStore(store);
    const [eps, nets] = await Promise.all([recs.listAllEndpoints(), recs.listNetworks()]);
    const found: EndpointRecord[] = refs.map((r) => {
      const ep = findEndpoint(eps, r);
      if (!ep) throw new RecordError('unknown-endpoint', 'not-found', `no endpoint ${JSON.stringify(r)} (see tsoverlay endpoint ls)`);
      return ep;
    });
    printJson(found.map((ep) => ({ ...ep, networkName: nets.find((n) => n.id === ep.networkId)?.name ?? null })));
    return 0;
  });
}

/** A pool by id (`local/10.20.0.0/24`) or by its CIDR when exactly one pool has it. */
function findPool(pools: readonly PoolInfo[], ref: string): PoolInfo {
  const byId = pools.find((p) => p.poolId === ref);
  if (byId) return byId;
  const byCidr = pools.filter((p) => p.cidr === ref);
  if (byCidr.length > 1) throw new RecordError('ambiguous-pool', 'bad-request', `${JSON.stringify(ref)} is the range of ${byCidr.length} pools (${byCidr.map((p) => p.poolId).join(', ')}): use a pool id`);
  if (byCidr.length === 1) return byCidr[0]!;
  throw new RecordError('unknown-pool', 'not-found', `no pool ${JSON.stringify(ref)} (see tsoverlay ipam ls)`);
}

/** `tsoverlay ipam inspect POOL…`: each pool (range, gateway, reserved, users) with its allocations. */
export function ipamInspect(refs: string[], opts: LsOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const ipam = new Ipam(store, { hostId: 'cli' });
    const pools = await ipam.listPools();
    const found = refs.map((r) => findPool(pools, r));
    const out: (PoolInfo & { allocations: Allocation[] })[] = [];
    for (const p of found) out.push({ ...p, allocations: await ipam.listAllocations(p.poolId) });
    printJson(out);
    return 0;
  });
}
