// Store benchmark: CAS writes/s (sequential, 16 concurrent on distinct keys, 16 contending on one
// key), watch latency from put to delivery on another connection, and one large range, for the
// embedded SQLite store and a real 3-member etcd cluster started here. Both keep data on the same disk.
// Run: npx tsx bench/store.ts [--keys 100000] [--samples 300]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../store/open.js';
import { isRetryable } from '../store/errors.js';
import type { Op, Store } from '../store/types.js';
import { startEtcdCluster } from '../test/harness/etcd.js';
import { pct } from './stats.js';

interface Figures {
  casSeq: number;
  casPar: number;
  casContended: number;
  watchP50: number;
  watchP95: number;
  rangeMs: number;
}

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const KEYS = arg('keys', 100_000);
const SAMPLES = arg('samples', 300);
const CONC = 16;


/** Run fn again while it fails retryable (the writes here are idempotent or re-checked). */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** CAS writes on one key by its only writer, which knows the current modRevision. */
async function casLoop(s: Store, key: string, until: number): Promise<number> {
  let mod = await retrying(() => s.put(key, '0'));
  let n = 0;
  while (performance.now() < until) {
    try {
      const r = await s.txn([{ key, target: 'modRevision', op: '==', value: mod }], [{ type: 'put', key, value: String(n + 1) }]);
      if (!r.succeeded) throw new Error('unexpected CAS conflict');
      mod = r.revision;
      n++;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      const cur = await retrying(() => s.get(key)); // the write may have landed: resync
      mod = cur!.modRevision;
      n = Number(cur!.value);
    }
  }
  return n;
}

/** Read-modify-write increments racing on one key; returns successful increments. */
async function contender(s: Store, key: string, until: number): Promise<number> {
  let ok = 0;
  while (performance.now() < until) {
    const cur = await retrying(() => s.get(key));
    const cmp = cur ? { key, target: 'modRevision' as const, op: '==' as const, value: cur.modRevision } : { key, target: 'createRevision' as const, op: '==' as const, value: 0 };
    const r = await s.txn([cmp], [{ type: 'put', key, value: String(cur ? Number(cur.value) + 1 : 1) }]).catch((err: unknown) => {
      if (isRetryable(err)) return { succeeded: false };
      throw err;
    });
    if (r.succeeded) ok++;
  }
  return ok;
}

async function watchLatency(writer: Store, watcher: Store, prefix: string): Promise<number[]> {
  const lat: number[] = [];
  let pending: ((t: number) => void) | undefined;
  const w = await watcher.watch(prefix, () => pending?.(performance.now()));
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const got = new Promise<number>((resolve) => (pending = resolve));
      const t0 = performance.now();
      await writer.put(`${prefix}k`, String(i));
      lat.push((await got) - t0);
      await new Promise((r) => setTimeout(r, 2)); // let pollers go idle, as between real events
    }
  } finally {
    await w.cancel();
  }
  return lat;
}

async function fill(s: Store, prefix: string, n: number, maxOps: number): Promise<void> {
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += maxOps) {
    const ops: Op[] = [];
    for (let j = i; j < Math.min(n, i + maxOps); j++) ops.push({ type: 'put' as const, key: `${prefix}${String(j).padStart(7, '0')}`, value: `{"address":"10.${j >> 16}.${(j >> 8) & 255}.${j & 255}"}` });
    inflight.push(retrying(() => s.txn([], ops)));
    if (inflight.length >= 8) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
}

async function measure(label: string, url: string, maxOps: number): Promise<Figures> {
  const [a, b] = [await openStore(url), await openStore(url)];
  const stores = [a, ...(await Promise.all(Array.from({ length: CONC - 1 }, () => openStore(url))))];
  try {
    const base = `/tsoverlay/v1/bench/${Date.now()}/`;
    process.stderr.write(`${label}: CAS sequential…\n`);
    let end = performance.now() + 3000;
    const casSeq = (await casLoop(a, `${base}seq`, end)) / 3;
    process.stderr.write(`${label}: CAS ${CONC} concurrent…\n`);
    end = performance.now() + 3000;
    const par = await Promise.all(stores.map((s, i) => casLoop(s, `${base}par${i}`, end)));
    const casPar = par.reduce((x, y) => x + y, 0) / 3;
    process.stderr.write(`${label}: CAS ${CONC} contending…\n`);
    end = performance.now() + 3000;
    const cont = await Promise.all(stores.map((s) => contender(s, `${base}contended`, end)));
    const casContended = cont.reduce((x, y) => x + y, 0) / 3;
    process.stderr.write(`${label}: watch latency (${SAMPLES} samples)…\n`);
    const lat = await watchLatency(a, b, `${base}watch/`);
    process.stderr.write(`${label}: writing ${KEYS} keys…\n`);
    await fill(a, `${base}big/`, KEYS, maxOps);
    const t0 = performance.now();
    const r = await b.range(`${base}big/`);
    const rangeMs = performance.now() - t0;
    if (r.kvs.length !== KEYS) throw new Error(`range returned ${r.kvs.length} keys`);
    return { casSeq, casPar, casContended, watchP50: pct(lat, 50), watchP95: pct(lat, 95), rangeMs };
  } finally {
    await Promise.all([b, ...stores].map((s) => s.close()));
  }
}

function table(sq: Figures, et: Figures): string {
  const rows: Array<[string, number, number, 'hi' | 'lo']> = [
    ['CAS writes/s, sequential', sq.casSeq, et.casSeq, 'hi'],
    [`CAS writes/s, ${CONC} concurrent (distinct keys)`, sq.casPar, et.casPar, 'hi'],
    [`increments/s, ${CONC} contending on one key`, sq.casContended, et.casContended, 'hi'],
    ['watch latency p50 (ms)', sq.watchP50, et.watchP50, 'lo'],
    ['watch latency p95 (ms)', sq.watchP95, et.watchP95, 'lo'],
    [`range of ${KEYS} keys (ms)`, sq.rangeMs, et.rangeMs, 'lo'],
  ];
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
  const lines = [`${'metric'.padEnd(44)}${'sqlite'.padStart(10)}${'etcd x3'.padStart(10)}${'etcd/sqlite'.padStart(13)}`];
  for (const [name, s, e] of rows) lines.push(`${name.padEnd(44)}${fmt(s).padStart(10)}${fmt(e).padStart(10)}${(e / s).toFixed(2).padStart(13)}`);
  return lines.join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'tsot-bench-store-'));
const cluster = await startEtcdCluster({ members: 3, dir: join(dir, 'etcd') });
try {
  const sq = await measure('sqlite', `sqlite://${join(dir, 'store.db')}`, 128);
  const et = await measure('etcd', cluster.url, 128);
  process.stdout.write(
    `store benchmark (data under ${tmpdir()}; sqlite woken by inotify on its WAL; etcd: 3 members on loopback; load average ${loadavg()[0]!.toFixed(1)})\n${table(sq, et)}\n`,
  );
} finally {
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
}
