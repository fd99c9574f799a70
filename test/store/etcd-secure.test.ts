// The etcd backend over TLS with client certificates, and with user/password auth, against
// real single-member etcd servers: the URL forms etcds://…?ca=&cert=&key= and etcd://user:pw@….
import test from 'ava';
import { StoreError } from '../../store/errors.js';
import { openStore } from '../../store/open.js';
import type { WatchEvent } from '../../store/types.js';
import { run } from '../harness/exec.js';
import { startEtcdSingle, type EtcdCluster } from '../harness/etcd.js';
import { uniquePrefix, waitFor } from './conformance.js';

const clusters: EtcdCluster[] = [];
test.after.always(() => Promise.all(clusters.map((c) => c.stop())));

test('etcd over TLS with a client certificate', async (t) => {
  const c = await startEtcdSingle({ tls: true });
  clusters.push(c);
  t.regex(c.url, /^etcds:\/\//);
  const s = await openStore(c.url);
  t.teardown(() => s.close());
  t.false(s.description.includes('?'), 'no file paths or secrets in the description');
  const p = uniquePrefix('tls');
  const evs: WatchEvent[] = [];
  const w = await s.watch(p, (e) => evs.push(e));
  t.teardown(() => w.cancel());
  await s.put(`${p}k`, 'v');
  t.is((await s.get(`${p}k`))?.value, 'v');
  await waitFor(evs, (e) => e.length === 1, 5000, 'the event over TLS');
  const lease = await s.lease(5);
  await lease.revoke();
  // Without the client certificate the server refuses us.
  const host = c.endpoints[0]!.replace('https://', '');
  await t.throwsAsync(openStore(`etcds://${host}?ca=${encodeURIComponent(c.tls!.caFile)}`), { instanceOf: StoreError });
});

test('etcd with user/password auth', async (t) => {
  const c = await startEtcdSingle();
  clusters.push(c);
  const ctl = (...args: string[]) => run('etcdctl', [`--endpoints=${c.endpoints[0]}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 10_000 });
  await ctl('user', 'add', 'root', '--new-user-password=s3cret', '--interactive=false');
  await ctl('auth', 'enable');
  const host = c.endpoints[0]!.replace('http://', '');
  const s = await openStore(`etcd://root:s3cret@${host}/app`);
  t.teardown(() => s.close());
  t.false(s.description.includes('s3cret'));
  t.is(s.description, `etcd://root@${host}/app`);
  const p = uniquePrefix('auth');
  const evs: WatchEvent[] = [];
  const w = await s.watch(p, (e) => evs.push(e));
  t.teardown(() => w.cancel());
  const r = await s.txn([{ key: `${p}k`, target: 'createRevision', op: '==', value: 0 }], [{ type: 'put', key: `${p}k`, value: 'v' }]);
  t.true(r.succeeded);
  await waitFor(evs, (e) => e.length === 1, 5000, 'the event with auth');
  const q = await openStore(`etcd://${host}/app?user=root&password=s3cret`);
  t.is((await q.get(`${p}k`))?.value, 'v');
  await q.close();
  const err = await t.throwsAsync(openStore(`etcd://root:wrong@${host}`), { instanceOf: StoreError });
  t.false(err?.retryable, 'bad credentials are not retryable');
  t.false(err?.message.includes('wrong'));
});
