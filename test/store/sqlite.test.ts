// The conformance suite against the embedded SQLite store, plus SQLite-only behaviour
// (compaction gap, lease expiry by another process, several connections on one file).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../store/open.js';
import { SqliteStore } from '../../store/sqlite.js';
import type { WatchEvent } from '../../store/types.js';
import { storeConformance, uniquePrefix, waitFor } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'tsot-store-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const url = `sqlite://${join(dir, 'state', 'store.db')}`;

storeConformance('sqlite', {
  url: async () => url,
  open: (u) => openStore(u, { sqlite: { pollMs: 10, sweepMs: 100 } }),
  bigRange: 100_000,
  bigRangeMaxMs: 3000,
  maxTxnOps: 128,
  casWorkers: 4,
  casIncrements: 200,
});

test('sqlite: a watch behind the retained history gets onGap(compacted)', async (t) => {
  const file = join(dir, 'compact.db');
  const s = SqliteStore.open(file, { retainRevisions: 10 });
  t.teardown(() => s.close());
  const p = uniquePrefix('compact');
  const first = await s.put(`${p}k`, '0');
  for (let i = 1; i < 1200; i++) await s.put(`${p}k`, String(i));
  const gap = await new Promise<Error>((resolve) => {
    void s.watch(p, () => {}, { fromRevision: first, onGap: resolve });
  });
  t.like(gap, { code: 'compacted' });
  const events: WatchEvent[] = [];
  const rev = await s.revision();
  const w = await s.watch(p, (e) => events.push(e), { fromRevision: rev - 5 });
  t.teardown(() => w.cancel());
  await waitFor(events, (e) => e.length >= 6, 2000, 'retained events');
  t.is(events[0]!.revision, rev - 5);
});

test('sqlite: keys of a lease whose granter is gone vanish for other connections', async (t) => {
  const file = join(dir, 'orphan.db');
  const a = SqliteStore.open(file);
  const b = SqliteStore.open(file, { sweepMs: 60_000 });
  t.teardown(() => b.close());
  const p = uniquePrefix('orphan');
  const lease = await a.lease(1);
  await a.put(`${p}k`, 'v', { lease: lease.id });
  await a.close(); // the granting process is gone; nobody keeps the lease alive
  t.is((await b.range(p)).kvs.length, 1);
  await new Promise((r) => setTimeout(r, 1100));
  t.deepEqual((await b.range(p)).kvs, [], 'a read after expiry does not serve the key');
});

test('sqlite: a lease that expired before its keep-alive is reported lost', async (t) => {
  const s = SqliteStore.open(join(dir, 'lost.db'), { sweepMs: 60_000 });
  t.teardown(() => s.close());
  const lease = await s.lease(1);
  const lost = new Promise<Error>((resolve) => lease.onLost(resolve));
  await new Promise((r) => setTimeout(r, 1100));
  lease.keepAlive();
  t.like(await lost, { code: 'lease-lost' });
});

test.serial('sqlite: another connection\'s commit wakes a watcher through the WAL file, not the poll', async (t) => {
  const file = join(dir, 'wake.db');
  const watcher = SqliteStore.open(file, { pollMs: 60_000 });
  const writer = SqliteStore.open(file);
  t.teardown(() => Promise.all([watcher.close(), writer.close()]));
  const p = uniquePrefix('wake');
  const events: WatchEvent[] = [];
  const w = await watcher.watch(p, (e) => events.push(e));
  t.teardown(() => w.cancel());
  const t0 = performance.now();
  await writer.put(`${p}k`, 'v');
  await waitFor(events, (e) => e.length === 1, 2000, 'the event');
  const ms = performance.now() - t0;
  t.log(`delivered in ${ms.toFixed(2)} ms`);
  t.true(ms < 500);
});
