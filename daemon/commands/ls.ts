// Read-only listing commands over the store (`tsoverlay host|network|endpoint|ipam ls`):
// they read the store directly, so they work on any host that reaches it, daemon or not.
import { Ipam, type Allocation } from '../../ipam/index.js';
import { cidrContains, parseAddress, parseCidr } from '../../ipam/cidr.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { NetworkRecord } from '../../plugins/drivers/common/records.js';
import { keys, segment } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import type { HostRecord } from '../daemon.js';

export interface LsOptions {
  store?: string;
  stateDir: string;
  json?: boolean;
  /** false (`--no-trunc`): tables show 64-character ids in full. */
  trunc?: boolean;
}

/** A Docker id (64 hex digits) as tables show it, 12 digits like `docker network ls`. */
const DOCKER_ID = /^[0-9a-f]{64}$/;
export const shortId = (v: string) => (DOCKER_ID.test(v) ? v.slice(0, 12) : v);

/**
 * Print rows as a JSON array (always full) or as an aligned table with the given columns, where
 * Docker's 64-digit ids are cut to 12 (any prefix of 12 or more is accepted back) unless `full`.
 */
export function printRows(rows: Record<string, unknown>[], columns: string[], json?: boolean, full = false): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const text = (v: unknown) => (full ? String(v) : shortId(String(v)));
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : Array.isArray(v) ? v.map(text).join(',') || '-' : text(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
}

/** A flag value the command cannot use; printed alone by the CLI (it names flag and value). */
export class UsageError extends Error {
  readonly code = 'invalid-argument';
  readonly kind = 'bad-request';
  readonly retryable = false;
}

/** A value for messages: JSON-quoted (no control characters reach the terminal), capped. */
function shown(v: string): string {
  return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}… (${v.length} characters)` : JSON.stringify(v);
}

/** The id a filter flag names, refused (naming the flag and value) when no record can have it. */
function idFlag(flag: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    segment(v);
  } catch (err) {
    const why = v === '' ? 'expected an id, got an empty value' : (err as Error).message;
    throw new UsageError(`${flag} ${shown(v)}: ${why}`);
  }
  return v;
}

/** Open the store named by the options (default: the state dir's SQLite store), run fn, close it. */
export async function withStore<T>(opts: LsOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(opts.store ?? `sqlite://${opts.stateDir}/store.db`);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Records of the store; an unreadable record is reported on stderr and skipped. */
function records(store: Store): RecordStore {
  return new RecordStore(store, (key, err) => process.stderr.write(`skipping ${key}: ${err.message}\n`));
}

/** A host record's listed fields, or the reason it cannot be read. */
function hostRow(value: string): { id: string; advertise: string | null } | string {
  let rec: Partial<HostRecord>;
  try {
    rec = JSON.parse(value) as Partial<HostRecord>;
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (typeof rec !== 'object' || rec === null || typeof rec.id !== 'string') return 'not a host record (no string "id")';
  if (rec.advertise !== null && rec.advertise !== undefined && typeof rec.advertise !== 'string') return '"advertise" is not a string';
  return { id: rec.id, advertise: rec.advertise ?? null };
}

/**
 * `tsoverlay host ls`: every registered host; a host is alive while its lease lasts. Like
 * `docker network ls` (the engine skips a network it cannot load), a record that cannot be
 * read is named on stderr and the others are listed; the exit code is 1 only when there were
 * records and none could be read, so a script notices a store it cannot use at all.
 */
export function hostLs(opts: LsOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const { kvs } = await store.range(keys.hosts());
    const rows: Record<string, unknown>[] = [];
    for (const kv of kvs) {
      const row = hostRow(kv.value);
      if (typeof row === 'string') process.stderr.write(`tsoverlay: skipping host record ${shown(kv.key)}: ${row}\n`);
      else rows.push({ ...row, alive: kv.lease !== undefined });
    }
    printRows(rows, ['id', 'advertise', 'alive'], opts.json, opts.trunc === false);
    return kvs.length > 0 && rows.length === 0 ? 1 : 0;
  });
}

/** `tsoverlay network ls`: every network of every driver and host. */
export function networkLs(opts: LsOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = records(store);
    const eps = await recs.listAllEndpoints();
    const rows = (await recs.listNetworks()).map((n) => ({
      id: n.id,
      name: n.name ?? null,
      driver: n.driver,
      scope: n.scope,
      subnets: n.subnets,
      gateways: n.gateways,
      bridge: n.bridge ?? null,
      internal: n.internal,
      endpoints: eps.filter((ep) => ep.networkId === n.id).length,
    }));
    printRows(rows, ['id', 'name', 'driver', 'scope', 'subnets', 'gateways', 'bridge', 'internal', 'endpoints'], opts.json, opts.trunc === false);
    return 0;
  });
}

/** `tsoverlay endpoint ls`: every endpoint with its host, addresses and published ports. */
export function endpointLs(opts: LsOptions & { network?: string }): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = records(store);
    const network = idFlag('--network', opts.network);
    const eps = network !== undefined ? await recs.listEndpoints(network) : await recs.listAllEndpoints();
    const rows = eps.map((ep) => {
      return {
        id: ep.id,
        network: ep.networkId,
        host: ep.hostId,
        container: ep.containerId ?? null,
        names: [...ep.names, ...ep.aliases],
        addresses: ep.addresses,
        mac: ep.mac ?? null,
        ports: ep.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`),
      };
    });
    printRows(rows, ['id', 'network', 'host', 'container', 'names', 'addresses', 'mac', 'ports'], opts.json, opts.trunc === false);
    return 0;
  });
}

/** The network whose subnets hold an allocation's address (null when none does). */
export function networkOf(a: Allocation, nets: readonly NetworkRecord[]): string | null {
  for (const n of nets) {
    if (n.subnets.some((s) => cidrContains(parseCidr(s), parseAddress(a.address)))) return n.name ?? n.id;
  }
  return null;
}

/** `tsoverlay ipam ls`: every allocation as {address, pool, network, owner, host}. */
export function ipamLs(opts: LsOptions & { pool?: string }): Promise<number> {
  return withStore(opts, async (store) => {
    const ipam = new Ipam(store, { hostId: 'cli' });
    const [allocs, nets] = await Promise.all([ipam.listAllocations(idFlag('--pool', opts.pool)), records(store).listNetworks()]);
    const rows = allocs.map((a) => ({
      address: a.address,
      pool: a.poolId,
      network: networkOf(a, nets),
      owner: a.owner,
      host: a.host,
      kind: a.kind,
    }));
    printRows(rows, ['address', 'pool', 'network', 'owner', 'host', 'kind'], opts.json, opts.trunc === false);
    return 0;
  });
}
