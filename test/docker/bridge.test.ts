// Issue 4, Docker half: `-d tsbridge` networks on the real engine with the real daemon in its
// namespace. Create/inspect/rm with options; containers reach each other by IP and by name;
// --ip; connect --alias / disconnect; --internal; enable_icc=false; -p from a client namespace;
// stop/start; and after `network rm` nothing of the network is left.
import test from 'ava';
import { containerIPv4, pingFromContainer } from '../harness/container.js';
import type { Netns } from '../harness/netns.js';
import { eventually, inspectNetwork, startWorld, type World } from './world.js';

let world: World | undefined;
let outside: Netns | undefined;
let client: Netns | undefined;

test.before(async () => {
  world = await startWorld('dbr');
  // Two more "machines" wired to the engine's host: one outside (internal networks must not
  // reach it), one client (reaches published ports). Only these namespaces see the packets.
  outside = await world.nets.add('out');
  await world.nets.link(world.host, 'vout', '10.210.0.1/24', outside, 'eth0', '10.210.0.2/24');
  client = await world.nets.add('cli');
  await world.nets.link(world.host, 'vcli', '10.211.0.1/24', client, 'eth0', '10.211.0.2/24');
  await client.ip('route', 'add', 'default', 'via', '10.211.0.1');
});
test.after.always(async () => {
  await world?.cleanup();
});

function w(): World {
  if (!world) throw new Error('setup failed');
  return world;
}

const run = (name: string, net: string, ...more: string[]) =>
  w().docker(['run', '-d', '--name', name, '--net', net, ...more, 'busybox:local', 'sleep', '600']);

/** What of a network is visible in the host namespace: links, rules, store keys. */
async function traces(networkId: string, bridge: string, subnet: string): Promise<string[]> {
  const { host, store } = w();
  const found: string[] = [];
  const links = await host.ip('-o', 'link', 'show');
  if (links.includes(`${bridge}:`) || links.includes(`${bridge}@`)) found.push(`link ${bridge}`);
  for (const l of links.split('\n')) if (l.includes(`master ${bridge} `)) found.push(`port ${l.split(':')[1]!.trim()}`);
  const rules = await host.exec('iptables-save', []);
  for (const line of rules.split('\n')) if (line.includes(subnet) || line.includes(bridge)) found.push(`rule ${line}`);
  for (const kv of (await store.range('/tsoverlay/v1/')).kvs) {
    if (kv.key.includes(networkId) || kv.key.includes(subnet.split('/')[0]!)) found.push(`key ${kv.key}`);
  }
  return found;
}

test.serial('create/inspect/rm with --subnet, --gateway, --ip-range and -o; containers talk by IP and by name; --ip', async (t) => {
  const { engine, host } = w();
  await engine.docker([
    'network', 'create', '-d', 'tsbridge', '--subnet', '10.60.0.0/24', '--gateway', '10.60.0.254', '--ip-range', '10.60.0.64/26',
    '-o', 'com.docker.network.bridge.name=tsbr-web', '-o', 'com.docker.network.driver.mtu=1400', 'web',
  ]);
  const inspect = await inspectNetwork(w(), 'web');
  t.is(inspect.Driver, 'tsbridge');
  t.like(inspect.IPAM.Config[0], { Subnet: '10.60.0.0/24', Gateway: '10.60.0.254', IPRange: '10.60.0.64/26' });
  t.like(inspect.Options, { 'com.docker.network.bridge.name': 'tsbr-web', 'com.docker.network.driver.mtu': '1400' });
  // The bridge carries the gateway, with the MTU asked for.
  const br = JSON.parse(await host.exec('ip', ['-j', 'addr', 'show', 'tsbr-web']))[0];
  t.is(br.mtu, 1400);
  t.true(br.addr_info.some((a: { local: string }) => a.local === '10.60.0.254'));

  await run('web1', 'web');
  await run('web2', 'web', '--ip', '10.60.0.7');
  t.is(await containerIPv4(engine, 'web1'), '10.60.0.64');
  t.is(await containerIPv4(engine, 'web2'), '10.60.0.7');
  // The container's interface: eth0, the MTU, a MAC derived from the address.
  const link = await engine.exec('web2', ['ip', '-o', 'link', 'show', 'eth0']);
  t.regex(link, /mtu 1400/);
  t.regex(link, /link\/ether 02:42:0a:3c:00:07/);
  t.true(await pingFromContainer(engine, 'web1', '10.60.0.7'), 'by IP');
  t.true(await pingFromContainer(engine, 'web2', 'web1'), "by name (the engine's DNS)");
  t.true(await pingFromContainer(engine, 'web1', '10.60.0.254'), 'the gateway');
  t.true(await pingFromContainer(engine, 'web1', '10.210.0.2'), 'outside, masqueraded');

  await engine.docker(['rm', '-f', 'web1', 'web2']);
  const id = inspect.Id as string;
  await engine.docker(['network', 'rm', 'web']);
  t.deepEqual(await traces(id, 'tsbr-web', '10.60.0.0/24'), [], 'no bridge, veth, rule or key of the network is left');
});

test.serial('network connect --alias / disconnect', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--subnet', '10.61.0.0/24', 'back']);
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--subnet', '10.62.0.0/24', 'front']);
  await run('db1', 'back');
  await run('app1', 'front');
  t.false(await pingFromContainer(engine, 'app1', '10.61.0.2'), 'networks are isolated');
  await engine.docker(['network', 'connect', '--alias', 'database', '--ip', '10.62.0.50', 'front', 'db1']);
  const addrs = await engine.exec('db1', ['ip', '-o', '-4', 'addr', 'show']);
  t.regex(addrs, /eth1 .*inet 10\.62\.0\.50\/24/);
  t.true(await pingFromContainer(engine, 'app1', 'database'), 'the alias resolves on the connected network');
  t.true(await pingFromContainer(engine, 'app1', 'db1'));
  // The daemon asks the engine for names after Join (the plugin protocol carries none).
  const named = async () => (await w().store.range('/tsoverlay/v1/endpoints/')).kvs.map((kv) => JSON.parse(kv.value)).find((e) => e.aliases?.includes('database'));
  await eventually(async () => (await named()) !== undefined, 10_000, 'the alias in the endpoint record').catch(() => undefined);
  t.like(await named(), { names: ['db1'] });
  await engine.docker(['network', 'disconnect', 'front', 'db1']);
  t.notRegex(await engine.exec('db1', ['ip', '-o', 'link', 'show']), /eth1/);
  t.false(await pingFromContainer(engine, 'app1', '10.62.0.50'));
  // Teardown is answered before its kernel work ends: wait for it to settle.
  await eventually(async () => (await w().keysLike('/endpoints/')).length === 2, 10_000, 'the disconnected endpoint to go').catch(() => undefined);
  const eps = await w().keysLike('/endpoints/');
  t.is(eps.length, 2, `one endpoint per running container: ${eps.join(', ')}`);
  await engine.docker(['rm', '-f', 'db1', 'app1']);
  await engine.docker(['network', 'rm', 'back', 'front']);
  t.deepEqual(await w().keysLike('/endpoints/'), []);
});

test.serial('--internal cannot reach the outside; enable_icc=false blocks container to container', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--internal', '--subnet', '10.63.0.0/24', 'int']);
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--subnet', '10.64.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'noicc']);
  await run('in1', 'int');
  await run('in2', 'int');
  t.true(await pingFromContainer(engine, 'in1', 'in2'), 'inside an internal network containers talk');
  t.false(await pingFromContainer(engine, 'in1', '10.210.0.2'), 'but nothing leaves it');
  t.regex(await engine.exec('in1', ['ip', 'route']), /^10\.63\.0\.0\/24 dev eth0/m);
  t.notRegex(await engine.exec('in1', ['ip', 'route']), /default/);
  await run('ni1', 'noicc');
  await run('ni2', 'noicc');
  t.false(await pingFromContainer(engine, 'ni1', '10.64.0.3'), 'icc off: no traffic between containers');
  t.true(await pingFromContainer(engine, 'ni1', '10.210.0.2'), 'icc off still reaches the outside');
  await engine.docker(['rm', '-f', 'in1', 'in2', 'ni1', 'ni2']);
  await engine.docker(['network', 'rm', 'int', 'noicc']);
});

test.serial('-p is reachable from a client namespace; stop/start gives a new endpoint and frees the old address', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', '10.65.0.0/24', 'pub']);
  await engine.docker(['run', '-d', '--name', 'www', '--net', 'pub', '-p', '8080:80', 'busybox:local', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  const get = () => client!.tryExec('curl', ['-sS', '-m', '3', 'http://10.211.0.1:8080/passwd'], { timeoutMs: 6_000 });
  const r = await get();
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /root:/);
  const before = JSON.parse(await engine.docker(['inspect', 'www']))[0].NetworkSettings.Networks.pub;
  await engine.docker(['stop', '-t', '0', 'www']);
  await eventually(async () => (await w().keysLike('/endpoints/')).length === 0, 10_000, 'the endpoint to go').catch(() => undefined);
  t.deepEqual(await w().keysLike('/endpoints/'), [], 'stop removes the endpoint');
  const held = (await w().keysLike('/ipam/addresses/')).map((k) => k.split('/').pop());
  t.false(held.includes(before.IPAddress), `the old address ${before.IPAddress} is free (held: ${held.join(', ')})`);
  t.not((await get()).code, 0, 'the port is gone');
  await engine.start('www', (m) => t.log(m));
  const after = JSON.parse(await engine.docker(['inspect', 'www']))[0].NetworkSettings.Networks.pub;
  t.not(after.EndpointID, before.EndpointID);
  t.deepEqual((await w().keysLike('/endpoints/')).map((k) => k.split('/').pop()), [after.EndpointID]);
  const again = await get();
  t.is(again.code, 0, again.stderr);
  await engine.docker(['rm', '-f', 'www']);
  await engine.docker(['network', 'rm', 'pub']);
  t.deepEqual(await w().keysLike('/ipam/addresses/'), []);
  t.deepEqual(await w().keysLike('/ports/'), [], 'host ports released');
});
