// Read-only listing commands over the store (`tsoverlay host ls`, …): they read the
// store directly, so they work on any host that reaches it, daemon running or not.
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { HostRecord } from '../daemon.js';

export interface LsOptions {
  store?: string;
  stateDir: string;
  json?: boolean;
}

/** Print rows as a JSON array or as an aligned table with the given columns. */
export function printRows(rows: Record<string, unknown>[], columns: string[], json?: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
}

/** `tsoverlay host ls`: every registered host; a host is alive while its lease lasts. */
export async function hostLs(opts: LsOptions): Promise<number> {
  const store = await openStore(opts.store ?? `sqlite://${opts.stateDir}/store.db`);
  try {
    const { kvs } = await store.range(keys.hosts());
    const rows = kvs.map((kv) => {
      const rec = JSON.parse(kv.value) as HostRecord;
      return { id: rec.id, advertise: rec.advertise, alive: kv.lease !== undefined };
    });
    printRows(rows, ['id', 'advertise', 'alive'], opts.json);
    return 0;
  } finally {
    await store.close();
  }
}
