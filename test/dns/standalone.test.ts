// `tsoverlay dns serve` (serveStandalone) over a real etcd: every network's names, services and
// SkyDNS records written by other tools, kept current by watch; and the clustered mode (workers
// sharing the sockets) over SQLite.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { T } from '../../dns/constants.js';
import { decodeMessage } from '../../dns/message.js';
import { parseListen, serveStandalone } from '../../dns/standalone.js';
import { keys, skydnsKey } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import { SqliteStore } from '../../store/sqlite.js';
import { startEtcdCluster } from '../harness/etcd.js';
import { buildQuery, dig, udpAsk, until } from './helpers.js';
import { startStubUpstream } from './stub-upstream.js';

test('parseListen', (t) => {
  t.deepEqual(parseListen('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  t.deepEqual(parseListen('[::1]:53'), { host: '::1', port: 53 });
  t.deepEqual(parseListen('10.0.0.1'), { host: '10.0.0.1', port: 53 });
  t.throws(() => parseListen('10.0.0.1:99999'), { code: 'invalid-listen' });
});

test('bad options are refused with DnsError codes', async (t) => {
  await t.throwsAsync(serveStandalone({ storeUrl: 'sqlite:///tmp/x.db', listen: [] }), { code: 'invalid-listen' });
  await t.throwsAsync(serveStandalone({ storeUrl: 'sqlite:///tmp/x.db', listen: ['127.0.0.1:0'], domain: 'bad domain' }), { code: 'invalid-domain' });
  await t.throwsAsync(serveStandalone({ storeUrl: 'sqlite:///tmp/x.db', listen: ['127.0.0.1:0'], upstreams: ['nope'] }), { code: 'invalid-upstream' });
  await t.throwsAsync(serveStandalone({ storeUrl: 'mysql://x', listen: ['127.0.0.1:0'] }), { code: 'store-failed' });
});

test('over etcd: all networks, services, SkyDNS records (CoreDNS layout), live updates, forwarding', async (t) => {
  const etcd = await startEtcdCluster({ members: 1 });
  t.teardown(() => etcd.stop());
  const up = await startStubUpstream('127.0.0.1');
  t.teardown(() => up.close());
  const writer = await openStore(etcd.url);
  t.teardown(() => writer.close());
  const put = (k: string, v: object) => writer.put(k, JSON.stringify(v));
  await put(keys.network('n1'), { id: 'n1', name: 'front', subnets: ['10.10.0.0/24'] });
  await put(keys.network('n2'), { id: 'n2', name: 'back', subnets: ['10.20.0.0/24'] });
  await put(keys.endpoint('n1', 'e1'), { id: 'e1', networkId: 'n1', hostId: 'ha', name: 'web', addresses: ['10.10.0.2/24'] });
  await put(keys.endpoint('n2', 'e2'), { id: 'e2', networkId: 'n2', hostId: 'hb', name: 'db', addresses: ['10.20.0.2/24'] });
  await put(keys.service('api'), { name: 'api', vip: '10.96.0.5', ports: [{ port: 443, protocol: 'tcp', name: 'https' }], backends: ['10.10.0.2'] });
  await put(skydnsKey('rails.east.skydns.local') + '/x1', { host: '10.0.1.1', port: 8080 });
  await put(skydnsKey('rails.east.skydns.local') + '/x2', { host: '10.0.1.2', port: 8080, priority: 20 });
  await put(skydnsKey('alias.skydns.local'), { host: 'web.front.tsoverlay', ttl: 60 });

  const h = await serveStandalone({ storeUrl: etcd.url, listen: ['127.0.0.1:0'], upstreams: [`127.0.0.1:${up.port}`] });
  t.teardown(() => h.stop());
  const at = ['@127.0.0.1', '-p', String(h.addresses()[0]!.port)];
  t.deepEqual((await dig([...at, 'web.front.tsoverlay'])).answers, ['A 10.10.0.2']);
  t.deepEqual((await dig([...at, 'db'])).answers, ['A 10.20.0.2'], 'every network is visible');
  t.deepEqual((await dig([...at, '_https._tcp.api.tsoverlay', 'SRV'])).answers, ['SRV 0 10 443 10-10-0-2.api.tsoverlay.']);
  t.deepEqual((await dig([...at, 'rails.east.skydns.local'])).answers.sort(), ['A 10.0.1.1', 'A 10.0.1.2']);
  t.deepEqual((await dig([...at, 'rails.east.skydns.local', 'SRV'])).answers.sort(), ['SRV 10 100 8080 x1.rails.east.skydns.local.', 'SRV 20 100 8080 x2.rails.east.skydns.local.']);
  t.deepEqual((await dig([...at, 'x2.rails.east.skydns.local'])).answers, ['A 10.0.1.2']);
  t.deepEqual((await dig([...at, 'alias.skydns.local'])).answers, ['CNAME web.front.tsoverlay.']);
  t.deepEqual((await dig([...at, 'www.example.test'])).answers, ['A 192.0.2.53'], 'loopback clients recurse');

  const port = h.addresses()[0]!.port;
  const ask = async (name: string) => decodeMessage((await udpAsk('127.0.0.1', port, buildQuery(name, T.A), { timeoutMs: 500 }))!)!.answers.map((a) => a.data);
  await put(skydnsKey('new.skydns.local'), { host: '10.0.2.2' });
  await put(keys.endpoint('n1', 'e3'), { id: 'e3', networkId: 'n1', name: 'late', addresses: ['10.10.0.3/24'] });
  const seen = await until(async () => (await ask('new.skydns.local')).length > 0 && (await ask('late')).length > 0, 3000, 2);
  t.truthy(seen.value);
  t.log(`etcd writes visible after ${seen.ms.toFixed(1)} ms`);
  t.true(seen.ms < 200, `${seen.ms} ms`);
  await writer.delete(skydnsKey('rails.east.skydns.local') + '/x1');
  await until(async () => (await ask('rails.east.skydns.local')).length === 1, 3000, 5);
  t.deepEqual(await ask('rails.east.skydns.local'), ['10.0.1.2']);
});

test('clustered: two worker processes share the sockets and both follow the store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-dnscl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = `sqlite://${join(dir, 'store.db')}`;
  const writer = SqliteStore.open(join(dir, 'store.db'));
  t.teardown(() => writer.close());
  await writer.put(keys.endpoint('n1', 'e1'), JSON.stringify({ id: 'e1', networkId: 'n1', name: 'web', addresses: ['10.10.0.2/24'] }));
  const h = await serveStandalone({ storeUrl: url, listen: ['127.0.0.1:0'], upstreams: [], workers: 2 });
  t.teardown(() => h.stop());
  const port = h.addresses()[0]!.port;
  const ask = async (name: string) => {
    const r = await udpAsk('127.0.0.1', port, buildQuery(name, T.A), { timeoutMs: 1000 });
    return r ? decodeMessage(r)!.answers.map((a) => a.data) : [];
  };
  t.deepEqual(await ask('web'), ['10.10.0.2']);
  await writer.put(keys.endpoint('n1', 'e2'), JSON.stringify({ id: 'e2', networkId: 'n1', name: 'late', addresses: ['10.10.0.3/24'] }));
  // Each query may land on either worker: require 20 answers in a row once it appeared.
  const r = await until(async () => {
    for (let i = 0; i < 20; i++) if ((await ask('late'))[0] !== '10.10.0.3') return false;
    return true;
  }, 5000, 20);
  t.truthy(r.value, 'every worker sees the new record');
  t.deepEqual((await dig(['@127.0.0.1', '-p', String(port), '+tcp', 'web'])).answers, ['A 10.10.0.2'], 'TCP too');
});
