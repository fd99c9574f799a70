// The conformance suite against a real 3-member etcd cluster (Debian etcd 3.4) on loopback,
// plus etcd-only behaviour: namespace prefix from the URL, watch resumption across a member restart.
import test from 'ava';
import { openStore } from '../../store/open.js';
import { run } from '../harness/exec.js';
import type { WatchEvent } from '../../store/types.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { storeConformance, uniquePrefix, waitFor } from './conformance.js';

let cluster: EtcdCluster | undefined;
let starting: Promise<EtcdCluster> | undefined;
function getCluster(): Promise<EtcdCluster> {
  starting ??= startEtcdCluster({ members: 3 }).then((c) => (cluster = c));
  return starting;
}
test.after.always(async () => {
  await cluster?.stop();
});

storeConformance('etcd', {
  url: async () => (await getCluster()).url,
  open: (u) => openStore(u),
  bigRange: 20_000,
  bigRangeMaxMs: 5000,
  maxTxnOps: 128,
  casWorkers: 4,
  casIncrements: 50,
});

test('etcd: the URL prefix namespaces every key', async (t) => {
  const c = await getCluster();
  const a = await openStore(`${c.url}/tenant-a`);
  const raw = await openStore(c.url);
  t.teardown(() => Promise.all([a.close(), raw.close()]));
  const p = uniquePrefix('ns');
  await a.put(`${p}k`, 'v');
  t.is((await a.get(`${p}k`))?.key, `${p}k`);
  t.is((await raw.get(`/tenant-a${p}k`))?.value, 'v');
  t.is(await raw.get(`${p}k`), undefined);
  const evs: WatchEvent[] = [];
  const w = await a.watch(p, (e) => evs.push(e));
  t.teardown(() => w.cancel());
  await raw.put(`/tenant-a${p}j`, 'w');
  await waitFor(evs, (e) => e.length >= 1, 5000, 'namespaced event');
  t.is(evs[0]!.key, `${p}j`);
  t.deepEqual((await a.range(p)).kvs.map((kv) => kv.key), [`${p}j`, `${p}k`]);
  t.true(!a.description.includes('password'));
});

// Serial: AVA runs serial tests before the concurrent ones, so the restart disturbs no other test.
test.serial('etcd: a watch carries on across a restart of the member it streams from', async (t) => {
  const c = await getCluster();
  const member = c.members[2]!;
  // A client bound to one member only, so its watch stream must break and resume.
  const s = await openStore(`etcd://${member.clientUrl.replace('http://', '')}`);
  const writer = await openStore(c.url);
  t.teardown(() => Promise.all([s.close(), writer.close()]));
  const p = uniquePrefix('restart');
  const seen: WatchEvent[] = [];
  const w = await s.watch(p, (e) => seen.push(e));
  t.teardown(() => w.cancel());
  for (let i = 0; i < 10; i++) await writer.put(`${p}k`, `v${i}`);
  await waitFor(seen, (e) => e.length >= 10, 5000, 'first 10');
  await member.stop();
  try {
    for (let i = 10; i < 20; i++) await writer.put(`${p}k`, `v${i}`);
  } finally {
    await member.start();
  }
  for (let i = 20; i < 30; i++) await writer.put(`${p}k`, `v${i}`);
  await waitFor(seen, (e) => e.length >= 30, 10_000, 'all 30');
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(seen.map((e) => e.value), Array.from({ length: 30 }, (_, i) => `v${i}`));
});

// Serial, so the compaction happens before the concurrent tests write their own history.
test.serial('etcd: a watch from a compacted revision gets onGap(compacted)', async (t) => {
  const c = await getCluster();
  const s = await openStore(c.url);
  t.teardown(() => s.close());
  const p = uniquePrefix('compact');
  const first = await s.put(`${p}k`, '1');
  const last = await s.put(`${p}k`, '2');
  await run('etcdctl', [`--endpoints=${c.endpoints[0]}`, 'compact', String(last)], { env: { ...process.env, ETCDCTL_API: '3' } });
  const gap = await new Promise<Error>((resolve, reject) => {
    s.watch(p, () => reject(new Error('no event expected')), { fromRevision: first, onGap: resolve }).catch(reject);
  });
  t.like(gap, { code: 'compacted' });
  const evs: WatchEvent[] = [];
  const w = await s.watch(p, (e) => evs.push(e), { fromRevision: last });
  t.teardown(() => w.cancel());
  await waitFor(evs, (e) => e.length === 1, 5000, 'the event at the compaction revision');
  t.is(evs[0]!.value, '2');
});
