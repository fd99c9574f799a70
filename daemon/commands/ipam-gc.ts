// `tsoverlay ipam gc [--dry-run]`: free allocations whose owner is gone, judged from the store
// alone (so it works on any host, daemon or not): a Docker endpoint's address whose endpoint
// record is gone, a CNI attachment's address on a network CNI or `network create` made, with
// neither an endpoint nor an attachment record. Owners it cannot judge (no owner, another IPAM user) are kept. Frees go
// through the IPAM's GC: each is a compare-and-swap on the record as read, never a re-allocation.
import { Ipam, parseOwner, type Allocation } from '../../ipam/index.js';
import { listAttachments } from '../../plugins/cni/attachments.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { Store } from '../../store/types.js';
import { networkOf, printRows, UsageError, withStore, type LsOptions } from './ls.js';

export interface IpamGcOptions extends LsOptions {
  dryRun?: boolean;
  /** Seconds an allocation must have existed before it is judged (an ADD in flight has no record yet). */
  grace?: string;
  pool?: string;
}

/** Default of --grace: longer than any ADD or Docker CreateEndpoint takes. */
export const DEFAULT_GRACE_SECONDS = 60;

/** What the store says about allocations' owners. */
export interface Liveness {
  /** Endpoint ids of every network. */
  endpoints: Set<string>;
  /** `network\0container\0ifname` of every CNI attachment record. */
  attachments: Set<string>;
  /** Names of the networks CNI or `network create` made (a CNI owner on one must have an endpoint record). */
  networkNames: Set<string>;
}

/** 'live', 'gone', or 'unknown' (never freed) for an owner string. */
export function ownerState(owner: string, l: Liveness): 'live' | 'gone' | 'unknown' {
  const o = parseOwner(owner);
  if (o?.type === 'docker') return l.endpoints.has(o.endpointId) ? 'live' : 'gone';
  if (o?.type !== 'cni') return 'unknown';
  if (l.attachments.has(`${o.network}\0${o.containerId}\0${o.ifname}`) || l.endpoints.has(`${o.containerId}:${o.ifname}`)) return 'live';
  // tsipam serving another plugin (the reference bridge, …) leaves no record to judge by.
  return l.networkNames.has(o.network) ? 'gone' : 'unknown';
}

/** Read the liveness facts from the store. */
export async function readLiveness(store: Store): Promise<Liveness> {
  const recs = new RecordStore(store, (key, err) => process.stderr.write(`skipping ${key}: ${err.message}\n`));
  const [nets, eps, atts] = await Promise.all([recs.listNetworks(), recs.listAllEndpoints(), listAttachments(store)]);
  return {
    endpoints: new Set(eps.map((e) => e.id)),
    attachments: new Set(atts.map((a) => `${a.network}\0${a.containerId}\0${a.ifname}`)),
    // Only networks CNI or `network create` made (ids `cni:…`): there every attachment has a record.
    networkNames: new Set(nets.flatMap((n) => (n.name !== undefined && n.id.startsWith('cni:') ? [n.name] : []))),
  };
}

function graceMs(v: string | undefined): number {
  if (v === undefined) return DEFAULT_GRACE_SECONDS * 1000;
  if (!/^\d{1,7}$/.test(v)) throw new UsageError(`--grace ${JSON.stringify(v)}: expected a whole number of seconds`);
  return Number(v) * 1000;
}

/** `tsoverlay ipam gc`: prints what was (or with --dry-run would be) released, as `ipam ls` rows. */
export async function ipamGc(opts: IpamGcOptions): Promise<number> {
  const grace = graceMs(opts.grace);
  return withStore(opts, async (store) => {
    const ipam = new Ipam(store, { hostId: 'cli' });
    if (opts.pool !== undefined) await ipam.getPool(opts.pool); // unknown-pool names it
    const live = await readLiveness(store);
    const now = Date.now();
    const dead = (owner: string, a: Allocation) => a.kind === 'endpoint' && now - Date.parse(a.time) >= grace && ownerState(owner, live) === 'gone';
    let freed: Allocation[];
    if (opts.dryRun) {
      freed = (await ipam.listAllocations(opts.pool)).filter((a) => a.owner !== null && dead(a.owner, a));
    } else {
      freed = await ipam.gc({ isOwnerValid: (owner, a) => !dead(owner, a), ...(opts.pool !== undefined ? { poolId: opts.pool } : {}) });
    }
    const nets = await new RecordStore(store).listNetworks();
    // `ipam ls` rows, with the allocation's time.
    const rows = freed.map((a) => ({ address: a.address, pool: a.poolId, network: networkOf(a, nets), owner: a.owner, host: a.host, kind: a.kind, time: a.time }));
    printRows(rows, ['address', 'pool', 'network', 'owner', 'host', 'time'], opts.json, opts.trunc === false);
    if (!opts.json) {
      const n = `${rows.length} allocation${rows.length === 1 ? '' : 's'}`;
      process.stdout.write(opts.dryRun ? `would release ${n} (dry run: nothing changed)\n` : `released ${n}\n`);
    }
    return 0;
  });
}
