// Heavier conformance tests: CAS from several processes, watch resumption across a
// reconnect, large ranges. Registered by storeConformance().
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WatchEvent } from '../../store/types.js';
import { type ConformanceTarget, openFor, uniquePrefix, waitFor } from './conformance.js';

const WORKER = fileURLToPath(new URL('./fixtures/cas-worker.ts', import.meta.url));

interface WorkerResult {
  workerId: string;
  won: boolean;
  applied: number;
  conflicts: number;
  retries: number;
}

function runWorker(args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`cas-worker exited ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out.trim()) as WorkerResult);
    });
  });
}

export function registerExtraConformance(name: string, target: ConformanceTarget): void {
  test(`${name}: concurrent CAS from several processes: one creator, no lost increment`, async (t) => {
    const url = await target.url();
    const p = uniquePrefix('cas');
    const watcher = await openFor(t, target);
    const seen: WatchEvent[] = [];
    const w = await watcher.watch(`${p}counter`, (e) => seen.push(e));
    t.teardown(() => w.cancel());
    const startAt = String(Date.now() + 2500); // after every child has loaded
    const results = await Promise.all(
      Array.from({ length: target.casWorkers }, (_, i) =>
        runWorker([url, `${p}counter`, `${p}winner`, String(target.casIncrements), `w${i}`, startAt]),
      ),
    );
    const s = await openFor(t, target);
    t.is(results.filter((r) => r.won).length, 1, 'exactly one create-if-absent winner');
    const winner = results.find((r) => r.won)!;
    t.is((await s.get(`${p}winner`))?.value, winner.workerId);
    const total = results.reduce((n, r) => n + r.applied, 0);
    t.is(total, target.casWorkers * target.casIncrements);
    const counter = await s.get(`${p}counter`);
    t.is(counter?.value, String(total), 'final value = successful increments');
    t.is(counter?.version, total);
    await waitFor(seen, (e) => e.length >= total, 10_000, 'every increment on the watch');
    t.deepEqual(seen.map((e) => e.value), Array.from({ length: total }, (_, i) => String(i + 1)), 'the watch saw each increment once, in order');
    t.log(`conflicts: ${results.map((r) => r.conflicts).join(', ')}; retries: ${results.map((r) => r.retries).join(', ')}`);
  });

  test(`${name}: a watch resumes from a revision after reconnecting, without gaps or duplicates`, async (t) => {
    const writer = await openFor(t, target);
    const p = uniquePrefix('resume');
    const seen: WatchEvent[] = [];
    let s = await target.open(await target.url());
    let w = await s.watch(p, (ev) => seen.push(ev));
    for (let i = 0; i < 20; i++) await writer.put(`${p}k${i % 3}`, `v${i}`);
    await waitFor(seen, (e) => e.length >= 20, 5000, '20 events');
    // Disconnect mid-stream; writes continue while the watcher is away.
    await w.cancel();
    await s.close();
    const last = seen[seen.length - 1]!.revision;
    for (let i = 20; i < 40; i++) await writer.put(`${p}k${i % 3}`, `v${i}`);
    s = await target.open(await target.url());
    t.teardown(() => s.close());
    w = await s.watch(p, (ev) => seen.push(ev), { fromRevision: last + 1 });
    t.teardown(() => w.cancel());
    for (let i = 40; i < 50; i++) await writer.put(`${p}k${i % 3}`, `v${i}`);
    await waitFor(seen, (e) => e.length >= 50, 5000, '50 events');
    await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(seen.map((e) => e.value), Array.from({ length: 50 }, (_, i) => `v${i}`));
    const revs = seen.map((e) => e.revision);
    t.is(new Set(revs).size, 50, 'no duplicate');
  });

  test(`${name}: a range over many keys stays fast`, async (t) => {
    t.timeout(90_000);
    const s = await openFor(t, target);
    const p = uniquePrefix('big');
    const n = target.bigRange;
    const batch = target.maxTxnOps;
    const batches: Promise<unknown>[] = [];
    const t0w = performance.now();
    for (let i = 0; i < n; i += batch) {
      const ops = [];
      for (let j = i; j < Math.min(n, i + batch); j++) ops.push({ type: 'put' as const, key: `${p}${String(j).padStart(6, '0')}`, value: `{"n":${j}}` });
      batches.push(s.txn([], ops));
      if (batches.length >= 16) await Promise.all(batches.splice(0));
      // An embedded backend writes synchronously: let the other tests' timers run in between.
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(batches);
    const writeMs = performance.now() - t0w;
    const t0 = performance.now();
    const r = await s.range(p);
    const ms = performance.now() - t0;
    t.is(r.kvs.length, n);
    t.is(r.kvs[n - 1]!.value, `{"n":${n - 1}}`);
    t.log(`wrote ${n} keys in ${writeMs.toFixed(0)} ms; one range: ${ms.toFixed(0)} ms`);
    t.true(ms < target.bigRangeMaxMs, `range took ${ms.toFixed(0)} ms`);
    await s.txn([], [{ type: 'deletePrefix', prefix: p }]);
  });
}
