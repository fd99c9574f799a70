// `-d tshost` on the real engine. A remote driver cannot put a container on the host's stack;
// dockerd 20.10 accepts a Join without an interface and then attaches the container to its
// docker_gwbridge, so the container reaches what the host reaches (NATed) and `-p` works through
// the engine. Our part: the endpoint is recorded with the host's addresses and its exposed ports
// are reserved as host ports, so a tsbridge `-p` cannot take them.
import test from 'ava';
import { pingFromContainer } from '../harness/container.js';
import type { Netns } from '../harness/netns.js';
import { startWorld, type World } from './world.js';

let world: World | undefined;
let outside: Netns | undefined;

test.before(async () => {
  world = await startWorld('dho');
  outside = await world.nets.add('out');
  await world.nets.link(world.host, 'vout', '10.212.0.1/24', outside, 'eth0', '10.212.0.2/24');
  await outside.ip('route', 'add', 'default', 'via', '10.212.0.1');
});
test.after.always(async () => {
  await world?.cleanup();
});

function w(): World {
  if (!world) throw new Error('setup failed');
  return world;
}

test.serial('a tshost container: no interface of ours, outside reachable through the engine, record with host addresses and reserved ports', async (t) => {
  const { engine, store } = w();
  await engine.docker(['network', 'create', '-d', 'tshost', '--ipam-driver', 'null', 'hostnet']);
  await engine.docker(['run', '-d', '--name', 'h1', '--net', 'hostnet', '--expose', '9100', '-p', '8082:80', 'busybox:local', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  // One interface, the engine's docker_gwbridge attachment, with a default route.
  const links = await engine.exec('h1', ['ip', '-o', 'link', 'show']);
  t.deepEqual(links.split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim().split('@')[0]), ['lo', 'eth0']);
  t.regex(await engine.exec('h1', ['ip', 'route', 'show', 'default']), /default via 172\./);
  t.true(await pingFromContainer(engine, 'h1', '10.212.0.2'), 'outbound works');
  const r = await outside!.tryExec('curl', ['-sS', '-m', '3', 'http://10.212.0.1:8082/passwd'], { timeoutMs: 6_000 });
  t.is(r.code, 0, `-p works through the engine: ${r.stderr}`);

  // The record: the host's addresses, the exposed port reserved on every host address.
  const eps = (await store.range('/tsoverlay/v1/endpoints/')).kvs.map((kv) => JSON.parse(kv.value));
  t.is(eps.length, 1);
  t.like(eps[0], { driver: 'host', sandbox: { mode: 'host' } });
  t.deepEqual(eps[0].exposed.map((p: { port: number }) => p.port).sort(), [80, 9100]);
  t.true(eps[0].addresses.includes('10.212.0.1/24'), JSON.stringify(eps[0].addresses));
  t.true(eps[0].ports.some((p: { hostPort: number; hostIp: string }) => p.hostPort === 9100 && p.hostIp === '0.0.0.0'));

  // A tsbridge -p cannot take a port a host-network container holds.
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--subnet', '10.66.0.0/24', 'br']);
  const clash = await engine.tryDocker(['run', '--rm', '--net', 'br', '-p', '9100:80', 'busybox:local', 'true']);
  t.not(clash.code, 0);
  t.regex(clash.stderr, /host port .*9100\/tcp is already taken/);

  await engine.docker(['rm', '-f', 'h1']);
  t.deepEqual(await w().keysLike('/endpoints/'), []);
  t.deepEqual(await w().keysLike('/host-ports/'), [], 'reservations released');
  await engine.docker(['run', '--rm', '--net', 'br', '-p', '9100:80', 'busybox:local', 'true']);
  await engine.docker(['network', 'rm', 'hostnet', 'br']);
  t.deepEqual(await w().keysLike('/networks/'), []);
});

test.serial('tshost refuses options that need an interface of its own', async (t) => {
  const { engine } = w();
  const internal = await engine.tryDocker(['network', 'create', '-d', 'tshost', '--ipam-driver', 'null', '--internal', 'hx']);
  t.not(internal.code, 0);
  t.regex(internal.stderr, /NetworkDriver\.CreateNetwork: invalid value true for option com\.docker\.network\.internal: not supported by tshost/);
  const mtu = await engine.tryDocker(['network', 'create', '-d', 'tshost', '-o', 'com.docker.network.driver.mtu=1400', 'hy']);
  t.regex(mtu.stderr, /com\.docker\.network\.driver\.mtu/);
  const typo = await engine.tryDocker(['network', 'create', '-d', 'tshost', '-o', 'reservePort=false', 'hz']);
  t.regex(typo.stderr, /invalid value "false" for option reservePort: not an option of the tshost driver \(known: reservePorts\)/);
  t.is((await engine.docker(['network', 'ls', '--format', '{{.Name}}', '--filter', 'driver=tshost'])).trim(), '', [internal, mtu, typo].map((r) => r.stderr).join(' | '));
});
