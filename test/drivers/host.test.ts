// Host driver: records only (nothing made in any namespace), the host's addresses for DNS, and
// exposed ports reserved in the store so a published port of the bridge driver cannot take them.
import test from 'ava';
import { Firewall } from '../../proxy/firewall.js';
import { HostPortAllocator } from '../../proxy/allocator.js';
import { keys } from '../../store/keys.js';
import { HostDriver } from '../../plugins/drivers/host/host.js';
import { parseHostNetwork } from '../../plugins/drivers/host/config.js';
import { bridgeEnv, collectingLogger, dockerId, type Env } from './fixture.js';

function hostDriver(env: Env, ports?: HostPortAllocator) {
  return new HostDriver({ store: env.store, hostId: 'h1', kernel: env.k, hostNetns: env.host.path, log: env.log, ...(ports ? { ports } : {}) });
}

test('host network and endpoint are records only; addresses default to the host global ones (not our gateways)', async (t) => {
  const env = await bridgeEnv(t, 'hrec');
  await env.host.ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  await env.host.ip('addr', 'add', '192.0.2.10/24', 'dev', 'up0');
  await env.driver.createNetwork({ id: dockerId('b'), subnets: [{ subnet: '10.61.0.0/24', gateway: '10.61.0.1' }] });
  const before = (await env.h.links()).map((l) => l.name).sort();

  const d = hostDriver(env);
  const net = await d.createNetwork({ id: 'hostnet', name: 'host' });
  t.like(net, { driver: 'host', scope: 'local', hostId: 'h1', subnets: [], gateways: [] });
  t.deepEqual(await d.createNetwork({ id: 'hostnet', name: 'host' }), net);
  const ep = await d.createEndpoint('hostnet', { id: 'e1', containerId: 'c0ffee', names: ['web'], aliases: ['www'], exposed: [{ proto: 'tcp', port: 8080 }] });
  t.deepEqual(ep.addresses, ['192.0.2.10/24']);
  t.like(ep, { driver: 'host', containerId: 'c0ffee', names: ['web'], aliases: ['www'], exposed: [{ proto: 'tcp', port: 8080 }] });
  t.truthy(await env.store.get(keys.endpoint('hostnet', 'e1')));
  const given = await d.createEndpoint('hostnet', { id: 'e2', addresses: ['198.51.100.7', '2001:db8::7'] });
  t.deepEqual(given.addresses, ['198.51.100.7/32', '2001:db8::7/128']);

  t.deepEqual(await d.join('hostnet', 'e1'), { addresses: ['192.0.2.10/24'] });
  t.is((await d.endpoint('hostnet', 'e1'))!.sandbox!.mode, 'host');
  await d.leave('hostnet', 'e1');
  t.is((await d.endpoint('hostnet', 'e1'))!.sandbox, undefined);
  t.deepEqual((await env.h.links()).map((l) => l.name).sort(), before, 'no link was made or removed');

  await d.deleteNetwork('hostnet');
  await d.deleteNetwork('hostnet');
  t.deepEqual((await env.store.range(keys.networkEndpoints('hostnet'))).kvs, []);
  t.is(await env.store.get(keys.network('hostnet')), undefined);
});

test('exposed ports of a host endpoint are reserved: a published port cannot take them until the endpoint goes', async (t) => {
  const env = await bridgeEnv(t, 'hport', ['c1']);
  // Two allocators on one store, as the daemon's firewall and a standalone CNI process would have.
  const fw = new Firewall({ netnsPath: env.host.path, allocator: new HostPortAllocator({ hostId: 'h1', store: env.store }) });
  await fw.init();
  const bridge = env.newDriver({ firewall: fw });
  const d = hostDriver(env, new HostPortAllocator({ hostId: 'h1', store: env.store }));
  const net = await bridge.createNetwork({ id: dockerId('p'), subnets: [{ subnet: '10.62.0.0/24', gateway: '10.62.0.1' }] });
  await bridge.createEndpoint(net.id, { id: 'web', addresses: ['10.62.0.2/24'] });
  await d.createNetwork({ id: 'hostnet' });
  const ep = await d.createEndpoint('hostnet', { id: 'h-e1', exposed: [{ proto: 'tcp', port: 8080 }] });
  t.deepEqual(ep.ports.map((p) => `${p.proto} ${p.hostIp} ${p.hostPort}`), ['tcp 0.0.0.0 8080', 'tcp :: 8080']);

  const mapping = { proto: 'tcp' as const, containerPort: 80, hostIp: '', hostPort: 8080, hostPortEnd: 8080 };
  const err = await t.throwsAsync(bridge.publish(net.id, 'web', [mapping]));
  t.like(err, { code: 'port-taken', kind: 'conflict' });
  // The same port for another host endpoint is refused too, and nothing is recorded for it.
  await t.throwsAsync(d.createEndpoint('hostnet', { id: 'h-e2', exposed: [{ proto: 'tcp', port: 8080 }] }), { code: 'port-taken' });
  t.is(await d.endpoint('hostnet', 'h-e2'), undefined);

  await d.deleteEndpoint('hostnet', 'h-e1');
  const bound = await bridge.publish(net.id, 'web', [mapping]);
  t.is(bound[0]!.hostPort, 8080);
});

test('host driver: bad input names key and value; unknown network; unknown options are logged', async (t) => {
  const env = await bridgeEnv(t, 'hbad');
  const d = hostDriver(env);
  await t.throwsAsync(d.createEndpoint('nope', { id: 'e' }), { code: 'unknown-network' });
  await d.createNetwork({ id: 'hostnet' });
  const e1 = await t.throwsAsync(d.createEndpoint('hostnet', { id: 'e', exposed: [{ proto: 'icmp' as 'tcp', port: 1 }] }));
  t.regex(e1!.message, /invalid exposed\[0\]\.proto "icmp"/);
  const e2 = await t.throwsAsync(d.createEndpoint('hostnet', { id: 'e', addresses: ['host.local'] }));
  t.regex(e2!.message, /invalid addresses\[0\] "host\.local": not an IP address/);
  const e3 = await t.throwsAsync(d.createNetwork({ id: 'x', options: { reservePorts: 'sometimes' } }));
  t.regex(e3!.message, /invalid reservePorts "sometimes"/);
  await t.throwsAsync(d.join('hostnet', 'missing'), { code: 'unknown-endpoint' });
  const log = collectingLogger();
  parseHostNetwork({ id: 'y', options: { colour: 'red' } }, log);
  t.true(log.lines.some((l) => l.level === 'warn' && l.obj.option === 'colour'));
  // A bridge network id is not the host driver's.
  await env.driver.createNetwork({ id: 'br', subnets: [{ subnet: '10.63.0.0/24' }] });
  await t.throwsAsync(d.createEndpoint('br', { id: 'e' }), { code: 'wrong-driver' });
});
