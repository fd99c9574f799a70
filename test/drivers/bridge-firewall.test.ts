// Bridge driver with the real firewall (proxy/Firewall, iptables inside the host namespace,
// FORWARD policy DROP as dockerd leaves it): masquerade out to an "outside" namespace, internal
// networks, icc=false, isolation between networks, published ports, and reconcile after a restart.
import test from 'ava';
import { Firewall } from '../../proxy/firewall.js';
import { keys } from '../../store/keys.js';
import type { Netns } from '../harness/netns.js';
import { reach, serve } from './echo.js';
import { bridgeEnv, dockerId, ping, type Env } from './fixture.js';

const HOST_UP = '192.0.2.1';
const OUTSIDE = '192.0.2.2';

/** A host with the firewall, FORWARD DROP, and an uplink to an outside namespace with no route back. */
async function world(t: Parameters<typeof bridgeEnv>[0], tag: string, containers: string[]): Promise<Env & { fw: Firewall; outside: Netns }> {
  const env = await bridgeEnv(t, tag, containers);
  const outside = await env.set.add('out');
  await env.set.link(env.host, 'up0', `${HOST_UP}/24`, outside, 'eth0', `${OUTSIDE}/24`);
  await env.host.exec('iptables', ['-P', 'FORWARD', 'DROP']);
  await env.host.exec('ip6tables', ['-P', 'FORWARD', 'DROP']);
  const fw = new Firewall({ netnsPath: env.host.path });
  await fw.init();
  return Object.assign(env, { driver: env.newDriver({ firewall: fw }), fw, outside });
}

async function attach(env: Env, netId: string, ep: string, ctr: string, address: string) {
  await env.driver.createEndpoint(netId, { id: ep, addresses: [address] });
  return env.driver.join(netId, ep, { mode: 'netns', netnsPath: env.ctr[ctr]!.path, ifname: 'eth0' });
}

test('masquerade out, no-masquerade, internal, icc=false and isolation between two networks', async (t) => {
  const env = await world(t, 'fnet', ['a1', 'a2', 'b1', 'i1', 'm1', 'q1', 'q2']);
  await serve(t, env.outside, 'out', 7000);
  const mk = (tag: string, subnet: string, extra: Record<string, unknown> = {}) =>
    env.driver.createNetwork({ id: dockerId(tag), subnets: [{ subnet: `${subnet}.0/24`, gateway: `${subnet}.1` }], ...extra });
  const A = await mk('A', '10.51.0');
  const B = await mk('B', '10.52.0');
  const I = await mk('I', '10.53.0', { internal: true });
  const M = await mk('M', '10.54.0', { options: { masquerade: false } });
  const Q = await mk('Q', '10.55.0', { options: { icc: 'false' } });
  await attach(env, A.id, 'a1', 'a1', '10.51.0.2/24');
  await attach(env, A.id, 'a2', 'a2', '10.51.0.3/24');
  await attach(env, B.id, 'b1', 'b1', '10.52.0.2/24');
  await attach(env, I.id, 'i1', 'i1', '10.53.0.2/24');
  await attach(env, M.id, 'm1', 'm1', '10.54.0.2/24');
  await attach(env, Q.id, 'q1', 'q1', '10.55.0.2/24');
  await attach(env, Q.id, 'q2', 'q2', '10.55.0.3/24');
  const c = env.ctr;

  // Outbound: masqueraded to the host's uplink address, although FORWARD's policy is DROP.
  t.is(await reach(c.a1!, OUTSIDE, 7000), `out ${HOST_UP}`);
  t.is(await reach(c.b1!, OUTSIDE, 7000), `out ${HOST_UP}`);
  t.is(await reach(c.q1!, OUTSIDE, 7000), `out ${HOST_UP}`);
  // Without masquerade the outside sees 10.54.0.2 and has no route back.
  t.is(await reach(c.m1!, OUTSIDE, 7000), 'ERR:TIMEOUT');
  // Internal: no route out at all; with one added by hand, FORWARD still drops it.
  t.is(await reach(c.i1!, OUTSIDE, 7000), 'ERR:ENETUNREACH');
  await c.i1!.ip('route', 'add', 'default', 'via', '10.53.0.1');
  t.is(await reach(c.i1!, OUTSIDE, 7000), 'ERR:TIMEOUT');
  t.true(await ping(c.i1!, '10.53.0.1'), 'the gateway of an internal network answers');

  // Inside a network (FORWARD DROP policy notwithstanding) and icc=false.
  t.true(await ping(c.a1!, '10.51.0.3'));
  t.false(await ping(c.q1!, '10.55.0.3', 1), 'icc=false blocks container to container');
  t.true(await ping(c.q1!, '10.55.0.1'), 'icc=false still reaches the gateway');

  // Isolation: A and B cannot reach each other, nor I.
  t.false(await ping(c.a1!, '10.52.0.2', 1));
  t.false(await ping(c.b1!, '10.51.0.2', 1));
  t.false(await ping(c.a1!, '10.53.0.2', 1));

  // From outside, nothing of a masqueraded network is reachable without a published port.
  await env.outside.ip('route', 'add', '10.51.0.0/24', 'via', HOST_UP);
  t.false(await ping(env.outside, '10.51.0.2', 1));
});

test('published ports reach the container from outside; deleteEndpoint withdraws them; reconcile after a restart republishes', async (t) => {
  const env = await world(t, 'fpub', ['c1']);
  const net = await env.driver.createNetwork({ id: dockerId('P'), subnets: [{ subnet: '10.56.0.0/24', gateway: '10.56.0.1' }] });
  await attach(env, net.id, 'web', 'c1', '10.56.0.2/24');
  await serve(t, env.ctr.c1!, 'web', 8080);
  const bindings = await env.driver.publish(net.id, 'web', [{ proto: 'tcp', containerPort: 8080, hostIp: '', hostPort: 18080, hostPortEnd: 18080 }]);
  t.deepEqual(bindings, [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 18080, containerIp: '10.56.0.2', containerPort: 8080 }]);
  t.deepEqual((await env.driver.endpoint(net.id, 'web'))!.ports, bindings);
  t.is(await reach(env.outside, HOST_UP, 18080), `web ${OUTSIDE}`);
  t.regex(await reach(env.outside, HOST_UP, 18081), /^ERR:/);

  // A restart: new firewall (empty memory) and driver; the rules are flushed as after a reboot.
  await env.host.exec('iptables', ['-t', 'nat', '-F']);
  const fw2 = new Firewall({ netnsPath: env.host.path });
  await fw2.init();
  const d2 = env.newDriver({ firewall: fw2 });
  t.regex(await reach(env.outside, HOST_UP, 18080), /^ERR:/);
  const report = await d2.reconcile();
  t.deepEqual(report.republished, ['web']);
  t.deepEqual(report.errors, []);
  t.is(await reach(env.outside, HOST_UP, 18080), `web ${OUTSIDE}`);
  t.is(await reach(env.ctr.c1!, OUTSIDE, 7001), 'ERR:ECONNREFUSED', 'outbound masquerade is back too');

  await d2.deleteEndpoint(net.id, 'web');
  t.regex(await reach(env.outside, HOST_UP, 18080), /^ERR:/);
  t.is(await env.store.get(keys.endpoint(net.id, 'web')), undefined);
  await d2.deleteNetwork(net.id);
  const save = await env.host.exec('iptables-save', []);
  t.false(save.includes(net.bridge!), 'no rule mentions the bridge any more');
});

test('publish on an internal network is refused by the firewall and records nothing', async (t) => {
  const env = await world(t, 'fint', ['c1']);
  const net = await env.driver.createNetwork({ id: dockerId('I'), internal: true, subnets: [{ subnet: '10.57.0.0/24', gateway: '10.57.0.1' }] });
  await attach(env, net.id, 'e', 'c1', '10.57.0.2/24');
  const err = await t.throwsAsync(env.driver.publish(net.id, 'e', [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 0, hostPortEnd: 0 }]));
  t.like(err, { code: 'network-internal' });
  t.deepEqual((await env.driver.endpoint(net.id, 'e'))!.ports, []);
});
