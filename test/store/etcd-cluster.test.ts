// Fault tests against a real 3-member etcd cluster on loopback: the leader is killed during a
// stream of CAS writes, then every member is down and comes back. One cluster, serial tests.
import test from 'ava';
import { isRetryable, StoreError } from '../../store/errors.js';
import { openStore } from '../../store/open.js';
import type { Store, WatchEvent } from '../../store/types.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { uniquePrefix, waitFor } from './conformance.js';

let cluster: EtcdCluster | undefined;
test.before(async () => {
  cluster = await startEtcdCluster({ members: 3 });
});
test.after.always(async () => {
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WriterLog {
  /** Attempt ids the store confirmed as applied. */
  ok: string[];
  /** Attempt ids whose outcome is unknown (retryable error). */
  unknown: string[];
  /** Times (ms) at which writes were confirmed. */
  okAt: number[];
}

/** Increment `key` by CAS until `want` writes are confirmed; values are "n|attemptId". */
async function casWriter(s: Store, key: string, name: string, want: number, until: number): Promise<WriterLog> {
  const log: WriterLog = { ok: [], unknown: [], okAt: [] };
  let seq = 0;
  while (log.ok.length < want && Date.now() < until) {
    const id = `${name}:${seq++}`;
    try {
      const cur = await s.get(key);
      const n = cur ? Number(cur.value.split('|')[0]) : 0;
      const cmp = cur
        ? { key, target: 'modRevision' as const, op: '==' as const, value: cur.modRevision }
        : { key, target: 'createRevision' as const, op: '==' as const, value: 0 };
      const r = await s.txn([cmp], [{ type: 'put', key, value: `${n + 1}|${id}` }]);
      if (r.succeeded) {
        log.ok.push(id);
        log.okAt.push(Date.now());
      }
    } catch (err) {
      if (!isRetryable(err)) throw err;
      log.unknown.push(id);
      await sleep(20);
    }
  }
  return log;
}

test.serial('killing the leader during CAS writes: none applied twice, none lost, writers carry on', async (t) => {
  const c = cluster!;
  const key = `${uniquePrefix('leader-kill')}counter`;
  const watcherStore = await openStore(c.url);
  const writers = await Promise.all([openStore(c.url), openStore(c.url), openStore(c.url)]);
  t.teardown(() => Promise.all([watcherStore, ...writers].map((s) => s.close())));
  const seen: WatchEvent[] = [];
  const w = await watcherStore.watch(key, (e) => seen.push(e));
  t.teardown(() => w.cancel());

  const until = Date.now() + 40_000;
  const runs = writers.map((s, i) => casWriter(s, key, `w${i}`, 60, until));
  await waitFor(seen, (e) => e.length >= 30, 10_000, '30 writes before the kill');
  const leader = await c.leader();
  const killedAt = Date.now();
  await leader.kill();
  t.log(`killed leader ${leader.name} after ${seen.length} writes`);
  const logs = await Promise.all(runs);
  await leader.start();

  const confirmed = logs.flatMap((l) => l.ok);
  t.is(confirmed.length, 180, 'every writer reached its target');
  const final = (await watcherStore.get(key))!;
  const n = Number(final.value.split('|')[0]);
  await waitFor(seen, (e) => e.length >= n, 10_000, 'the watch to catch up');
  // History replayed from etcd itself must equal what the live watch (which lived through the kill) saw.
  const replay: WatchEvent[] = [];
  const rw = await watcherStore.watch(key, (e) => replay.push(e), { fromRevision: seen[0]!.revision });
  t.teardown(() => rw.cancel());
  await waitFor(replay, (e) => e.length >= n, 10_000, 'the replay');
  t.deepEqual(replay.map((e) => e.value), seen.map((e) => e.value), 'live watch = history: no gap, no duplicate');

  const history = seen.map((e) => e.value.split('|'));
  t.deepEqual(history.map(([k]) => Number(k)), Array.from({ length: n }, (_, i) => i + 1), 'each increment applied once, none skipped');
  const applied = history.map(([, id]) => id!);
  t.is(new Set(applied).size, applied.length, 'no attempt applied twice');
  for (const id of confirmed) t.true(applied.includes(id), `confirmed write ${id} is in the history`);
  const unknown = logs.flatMap((l) => l.unknown);
  const appliedUnknown = unknown.filter((id) => applied.includes(id));
  t.is(n, confirmed.length + appliedUnknown.length, 'history = confirmed + ambiguous writes that did land');

  // Carrying on: the longest pause in confirmed writes after the kill.
  const times = logs.flatMap((l) => l.okAt).filter((x) => x >= killedAt).sort((a, b) => a - b);
  const firstAfter = times[0]! - killedAt;
  const maxPause = Math.max(firstAfter, ...times.slice(1).map((x, i) => x - times[i]!));
  t.log(`first confirmed write ${firstAfter} ms after the kill; longest pause ${maxPause} ms; ambiguous ${unknown.length} (${appliedUnknown.length} landed)`);
  t.true(maxPause < 5000, `writes paused ${maxPause} ms`);
});

test.serial('all members down: calls fail fast and retryable, then recover by themselves', async (t) => {
  const c = cluster!;
  const s = await openStore(c.url);
  t.teardown(() => s.close());
  const p = uniquePrefix('all-down');
  await s.put(`${p}before`, '1');
  const evs: WatchEvent[] = [];
  const w = await s.watch(p, (e) => evs.push(e));
  t.teardown(() => w.cancel());

  await Promise.all(c.members.map((m) => m.kill()));
  try {
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => s.get(`${p}before`)],
      ['put', () => s.put(`${p}x`, '1')],
      ['txn', () => s.txn([{ key: `${p}x`, target: 'version', op: '==', value: 0 }], [{ type: 'put', key: `${p}x`, value: '1' }])],
      ['range', () => s.range(p)],
      ['lease', () => s.lease(5)],
      ['open', () => openStore(c.url)],
    ];
    for (const [name, call] of calls) {
      const t0 = Date.now();
      const err = await t.throwsAsync(call(), { instanceOf: StoreError }, name);
      const ms = Date.now() - t0;
      t.true(err?.retryable, `${name} failed retryable (${err?.code})`);
      t.true(ms < 2000, `${name} failed in ${ms} ms`);
    }
  } finally {
    await Promise.all(c.members.map((m) => m.start()));
  }
  const back = Date.now();
  for (;;) {
    try {
      await s.put(`${p}after`, '2');
      break;
    } catch (err) {
      if (!isRetryable(err) || Date.now() - back > 15_000) throw err;
      await sleep(100);
    }
  }
  const recoverMs = Date.now() - back;
  t.log(`first write ${recoverMs} ms after the cluster was healthy again`);
  t.true(recoverMs < 5000);
  await waitFor(evs, (e) => e.some((x) => x.key === `${p}after`), 10_000, 'the watch to resume');
  t.deepEqual(evs.map((e) => e.key.slice(p.length)), ['after'], 'nothing lost, nothing repeated');
});
