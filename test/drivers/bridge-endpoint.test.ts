// Bridge driver, endpoint level, on a real kernel inside test namespaces: netns (CNI) mode and
// engine (Docker) mode joins with pings, MTU, MAC, hairpin, EEXIST, rollback of a failed join,
// idempotent teardown, internal networks, IPv6, and reconcile re-attaching ports.
import test from 'ava';
import { keys } from '../../store/keys.js';
import { DEFAULT_LINK_GROUPS } from '../../plugins/drivers/bridge/bridge.js';
import { bridgeEnv, dockerId, ping, pingSoon, type Env } from './fixture.js';

const SUBNET = { subnet: '10.41.0.0/24', gateway: '10.41.0.1' };

async function network(env: Env, tag: string, extra: Record<string, unknown> = {}) {
  return env.driver.createNetwork({ id: dockerId(tag), name: tag, subnets: [SUBNET], ...extra });
}

async function joinNetns(env: Env, netId: string, epId: string, ctr: string, address: string, ifname = 'eth0') {
  await env.driver.createEndpoint(netId, { id: epId, addresses: [address] });
  return env.driver.join(netId, epId, { mode: 'netns', netnsPath: env.ctr[ctr]!.path, ifname });
}

test('netns mode: two containers ping each other and the gateway; MTU on both ends; derived MAC; default route', async (t) => {
  const env = await bridgeEnv(t, 'ecni', ['c1', 'c2']);
  const net = await network(env, 'n', { options: { mtu: 1400 } });
  const j1 = await joinNetns(env, net.id, 'ep-1', 'c1', '10.41.0.2/24');
  await joinNetns(env, net.id, 'ep-2', 'c2', '10.41.0.3/24');
  t.is(j1.mac, '02:42:0a:29:00:02');
  t.deepEqual(j1.gateways, { ipv4: '10.41.0.1' });
  t.is(j1.ifname, 'eth0');
  t.regex(j1.hostVeth, /^tso[0-9a-f]{12}$/);

  t.true(await ping(env.ctr.c1!, '10.41.0.3'));
  t.true(await ping(env.ctr.c2!, '10.41.0.2'));
  t.true(await ping(env.ctr.c1!, '10.41.0.1'));

  const c1 = env.k.ns(env.ctr.c1!.path);
  const eth0 = (await c1.link('eth0'))!;
  t.is(eth0.mtu, 1400);
  t.is(eth0.mac, '02:42:0a:29:00:02');
  const hostEnd = (await env.h.link(j1.hostVeth))!;
  t.is(hostEnd.mtu, 1400);
  t.is(hostEnd.master, net.bridge);
  t.is(hostEnd.group, DEFAULT_LINK_GROUPS.veth);
  t.false(hostEnd.bridgePort!.hairpin);
  const routes = await c1.routes({ family: 4 });
  t.true(routes.some((r) => r.dst === 'default' && r.via === '10.41.0.1'));

  const rec = await env.driver.endpoint(net.id, 'ep-1');
  t.like(rec, { hostId: 'h1', ifname: 'eth0', hostVeth: j1.hostVeth, sandbox: { mode: 'netns', netnsPath: env.ctr.c1!.path } });
  t.deepEqual(rec!.addresses, ['10.41.0.2/24']);
});

test('engine mode: SrcName is in the host namespace, host end on the bridge; moved and renamed as the engine does, it pings', async (t) => {
  const env = await bridgeEnv(t, 'eeng', ['c1', 'c2']);
  const net = await network(env, 'n');
  await joinNetns(env, net.id, 'peer', 'c2', '10.41.0.3/24');
  await env.driver.createEndpoint(net.id, { id: 'docker-ep', addresses: ['10.41.0.2/24'], mac: '02:aa:bb:cc:dd:ee' });
  const j = await env.driver.join(net.id, 'docker-ep', { mode: 'engine' });
  t.regex(j.srcName!, /^tsc[0-9a-f]{12}$/);
  t.is(j.mac, '02:aa:bb:cc:dd:ee', 'the engine-given MAC is kept');
  const src = (await env.h.link(j.srcName!))!;
  t.truthy(src, 'SrcName exists in the host namespace');
  t.is(src.mac, '02:aa:bb:cc:dd:ee');
  t.is((await env.h.link(j.hostVeth))!.master, net.bridge);

  // What dockerd does in its prestart hook: move, rename, address, up, default route.
  const c1 = env.ctr.c1!;
  await env.h.linkSetNetns(j.srcName!, c1.path);
  const ch = env.k.ns(c1.path);
  await ch.batch((b) =>
    b.linkSet(j.srcName!, { name: 'eth0' }).addrAdd('eth0', j.addresses[0]!).linkSetUp('eth0').routeAdd({ dst: 'default', via: j.gateways.ipv4! }),
  );
  t.true(await ping(c1, '10.41.0.1'));
  t.true(await ping(c1, '10.41.0.3'));

  await env.driver.leave(net.id, 'docker-ep');
  t.is(await ch.link('eth0'), null, 'leave removes the pair, in the sandbox too');
  t.is((await env.driver.endpoint(net.id, 'docker-ep'))!.sandbox, undefined);
});

test('hairpin mode on the port when the network asks for it', async (t) => {
  const env = await bridgeEnv(t, 'ehp', ['c1', 'c2']);
  const net = await network(env, 'n', { options: { hairpin: 'true' } });
  const a = await joinNetns(env, net.id, 'e1', 'c1', '10.41.0.2/24');
  await env.driver.createEndpoint(net.id, { id: 'e2', addresses: ['10.41.0.3/24'] });
  const b = await env.driver.join(net.id, 'e2', { mode: 'engine' });
  t.true((await env.h.link(a.hostVeth))!.bridgePort!.hairpin);
  t.true((await env.h.link(b.hostVeth))!.bridgePort!.hairpin);
});

test('an ifname that already exists in the container is interface-exists, and nothing is made', async (t) => {
  const env = await bridgeEnv(t, 'eexist', ['c1']);
  const net = await network(env, 'n');
  await env.ctr.c1!.ip('link', 'add', 'eth0', 'type', 'bridge');
  await env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.2/24'] });
  const err = await t.throwsAsync(env.driver.join(net.id, 'e1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: 'eth0' }));
  t.like(err, { code: 'interface-exists', kind: 'conflict' });
  t.regex(err!.message, /eth0 already exists/);
  t.deepEqual((await env.h.links()).filter((l) => l.kind === 'veth'), []);
  t.is((await env.driver.endpoint(net.id, 'e1'))!.sandbox, undefined);
});

test('a failure mid-join (the default route already exists) leaves no veth on either side and the record unjoined', async (t) => {
  const env = await bridgeEnv(t, 'erb', ['c1']);
  const net = await network(env, 'n');
  await env.ctr.c1!.ip('route', 'add', 'default', 'dev', 'lo');
  await env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.2/24'] });
  const err = await t.throwsAsync(env.driver.join(net.id, 'e1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: 'eth0' }));
  t.like(err, { code: 'EEXIST' });
  t.regex(err!.message, /route add 0\.0\.0\.0\/0 via 10\.41\.0\.1/);
  t.deepEqual((await env.h.links()).filter((l) => l.kind === 'veth'), []);
  t.is(await env.k.ns(env.ctr.c1!.path).link('eth0'), null);
  t.is((await env.driver.endpoint(net.id, 'e1'))!.sandbox, undefined);
  // With defaultRoute false the same join works.
  const j = await env.driver.join(net.id, 'e1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: 'eth0', defaultRoute: false });
  t.truthy(await env.h.link(j.hostVeth));
  t.true(await ping(env.ctr.c1!, '10.41.0.1'));
});

test('join or createEndpoint on a network never created is unknown-network; nothing is made', async (t) => {
  const env = await bridgeEnv(t, 'eunk', ['c1']);
  const e1 = await t.throwsAsync(env.driver.createEndpoint('nope', { id: 'e1', addresses: ['10.41.0.2/24'] }));
  t.like(e1, { code: 'unknown-network', kind: 'not-found' });
  const e2 = await t.throwsAsync(env.driver.join('nope', 'e1', { mode: 'engine' }));
  t.like(e2, { code: 'unknown-network' });
  const net = await network(env, 'n');
  const e3 = await t.throwsAsync(env.driver.join(net.id, 'missing', { mode: 'engine' }));
  t.like(e3, { code: 'unknown-endpoint' });
  const e4 = await t.throwsAsync(env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.99.0.2/24'] }));
  t.regex(e4!.message, /invalid addresses\[0\] "10\.99\.0\.2\/24": not inside any subnet/);
  t.deepEqual((await env.h.links()).filter((l) => l.kind === 'veth'), []);
  t.deepEqual((await env.store.range(keys.endpoints())).kvs, []);
});

test('deleteEndpoint and deleteNetwork leave no link, address or record; both are idempotent', async (t) => {
  const env = await bridgeEnv(t, 'edel', ['c1', 'c2']);
  const net = await network(env, 'n');
  await joinNetns(env, net.id, 'e1', 'c1', '10.41.0.2/24');
  await joinNetns(env, net.id, 'e2', 'c2', '10.41.0.3/24');
  await env.driver.createEndpoint(net.id, { id: 'e3', addresses: ['10.41.0.4/24'] });
  await env.driver.join(net.id, 'e3', { mode: 'engine' });

  await env.driver.deleteEndpoint(net.id, 'e1');
  await env.driver.deleteEndpoint(net.id, 'e1');
  t.is(await env.k.ns(env.ctr.c1!.path).link('eth0'), null);
  t.is(await env.store.get(keys.endpoint(net.id, 'e1')), undefined);
  // A network with endpoints left goes with them.
  await env.driver.deleteNetwork(net.id);
  await env.driver.deleteNetwork(net.id);
  t.deepEqual((await env.h.links()).filter((l) => l.name !== 'lo'), []);
  t.deepEqual((await env.h.addresses({ family: 4 })).map((a) => a.cidr), ['127.0.0.1/8']);
  t.is(await env.k.ns(env.ctr.c2!.path).link('eth0'), null);
  t.deepEqual((await env.store.range('/tsoverlay/v1/')).kvs, []);
});

test('createEndpoint twice with the same addresses returns the record; other addresses conflict', async (t) => {
  const env = await bridgeEnv(t, 'eidem');
  const net = await network(env, 'n');
  const a = await env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.2'] });
  t.deepEqual(a.addresses, ['10.41.0.2/24'], 'a bare address gets the subnet prefix');
  t.deepEqual(await env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.2/24'] }), a);
  await t.throwsAsync(env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.9/24'] }), { code: 'endpoint-exists' });
  await t.throwsAsync(env.driver.createEndpoint(net.id, { id: 'e2', addresses: ['10.41.0.1/24'] }), { message: /is the network's gateway/ });
  await t.throwsAsync(env.driver.createEndpoint(net.id, { id: 'e3', addresses: ['10.41.0.3'], mac: '01:00:5e:00:00:01' }), { message: /multicast/ });
});

test('internal network: no default route and no gateway in the join result; the gateway still answers', async (t) => {
  const env = await bridgeEnv(t, 'eint', ['c1']);
  const net = await network(env, 'n', { internal: true });
  t.false(net.masquerade);
  const j = await joinNetns(env, net.id, 'e1', 'c1', '10.41.0.2/24');
  t.deepEqual(j.gateways, {});
  const routes = await env.k.ns(env.ctr.c1!.path).routes({ family: 4 });
  t.false(routes.some((r) => r.dst === 'default'));
  t.true(await ping(env.ctr.c1!, '10.41.0.1'));
  t.false(await ping(env.ctr.c1!, '192.0.2.1', 1), 'no route out');
});

test('IPv6: dual-stack endpoints ping each other over both families', async (t) => {
  const env = await bridgeEnv(t, 'ev6', ['c1', 'c2']);
  const net = await env.driver.createNetwork({
    id: dockerId('v6'),
    subnets: [SUBNET, { subnet: 'fd00:41::/64', gateway: 'fd00:41::1' }],
  });
  await env.driver.createEndpoint(net.id, { id: 'e1', addresses: ['10.41.0.2/24', 'fd00:41::2/64'] });
  const j = await env.driver.join(net.id, 'e1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: 'eth0' });
  t.deepEqual(j.gateways, { ipv4: '10.41.0.1', ipv6: 'fd00:41::1' });
  const v4only = await joinNetns(env, net.id, 'e2', 'c2', '10.41.0.3/24', 'eth1');
  t.deepEqual(v4only.gateways, { ipv4: '10.41.0.1' }, 'no IPv6 gateway for an endpoint without IPv6');
  await env.driver.createEndpoint(net.id, { id: 'e3', addresses: ['fd00:41::3/64'] });
  await env.driver.join(net.id, 'e3', { mode: 'netns', netnsPath: env.ctr.c2!.path, ifname: 'eth0', defaultRoute: false });
  t.true(await ping(env.ctr.c2!, 'fd00:41::2'));
  t.true(await ping(env.ctr.c2!, 'fd00:41::1'));
  t.true(await ping(env.ctr.c2!, '10.41.0.2'));
  const r6 = await env.k.ns(env.ctr.c1!.path).routes({ family: 6 });
  t.true(r6.some((r) => r.dst === 'default' && r.via === 'fd00:41::1'));
});

test('reconcile re-attaches host ends after the bridge was deleted, and removes veths no endpoint explains', async (t) => {
  const env = await bridgeEnv(t, 'erec', ['c1', 'c2']);
  const net = await network(env, 'n', { options: { hairpin: true } });
  const a = await joinNetns(env, net.id, 'e1', 'c1', '10.41.0.2/24');
  await joinNetns(env, net.id, 'e2', 'c2', '10.41.0.3/24');
  await env.host.ip('link', 'del', net.bridge!);
  t.false(await ping(env.ctr.c1!, '10.41.0.3', 1));
  // A leftover of an unfinished join: our group, no joined endpoint.
  await env.host.ip('link', 'add', 'tsoleftover', 'group', String(DEFAULT_LINK_GROUPS.veth), 'type', 'veth', 'peer', 'name', 'tscleftover');

  const report = await env.newDriver().reconcile();
  t.deepEqual(report.bridgesCreated, [net.bridge]);
  t.is(report.reattached.length, 2);
  t.deepEqual(report.vethsRemoved, ['tsoleftover']);
  t.deepEqual(report.errors, []);
  t.true((await env.h.link(a.hostVeth))!.bridgePort!.hairpin, 'hairpin back on the re-attached port');
  t.true(await pingSoon(env.ctr.c1!, '10.41.0.3'), 'c1 reaches c2 over the re-made bridge');
  t.is(await env.h.link('tscleftover'), null);
});

test('check compares the record with the kernel: [] when as recorded, each difference otherwise', async (t) => {
  const env = await bridgeEnv(t, 'echk', ['c1']);
  const net = await network(env, 'n');
  const j = await joinNetns(env, net.id, 'e1', 'c1', '10.41.0.2/24');
  t.deepEqual(await env.driver.check(net.id, 'e1'), []);
  const c1 = env.k.ns(env.ctr.c1!.path);
  await c1.addrDel('eth0', '10.41.0.2/24');
  await env.h.linkSetMtu(j.hostVeth, 1300);
  t.deepEqual(await env.driver.check(net.id, 'e1'), [
    `host interface ${j.hostVeth} has MTU 1300, not 1500`,
    'interface eth0 lacks address 10.41.0.2/24',
  ]);
  await env.h.linkDel(j.hostVeth);
  t.deepEqual(await env.driver.check(net.id, 'e1'), [`host interface ${j.hostVeth} does not exist`]);
  await t.throwsAsync(env.driver.check(net.id, 'nope'), { code: 'unknown-endpoint' });
});
