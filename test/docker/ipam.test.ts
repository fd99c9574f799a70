// Issue 3, Docker half: the real engine allocating through `tsipam` (served by the real daemon in
// the engine's namespace), with Docker's built-in bridge driver and with `-d tsbridge`:
// --subnet, --ip-range, --gateway, --aux-address, auto pools, --ip; bad input shows our message
// in the docker CLI and leaves nothing in the store.
import test from 'ava';
import { containerIPv4 } from '../harness/container.js';
import { inspectNetwork, startWorld, type World } from './world.js';

let world: World | undefined;

test.before(async () => {
  world = await startWorld('dip');
});
test.after.always(async () => {
  await world?.cleanup();
});

function w(): World {
  if (!world) throw new Error('setup failed');
  return world;
}

/** Allocated addresses (by pool) in the store, sorted. */
async function allocations(): Promise<string[]> {
  const keys = await w().keysLike('/ipam/addresses/');
  return keys.map((k) => k.split('/').pop()!).sort();
}

for (const driver of ['bridge', 'tsbridge'] as const) {
  test.serial(`${driver}: --subnet, --ip-range, --gateway, --aux-address and --ip through tsipam`, async (t) => {
    const { engine } = w();
    const n = `sub-${driver}`;
    const third = driver === 'bridge' ? 50 : 51;
    const net = `10.${third}.0`;
    await engine.docker([
      'network', 'create', '-d', driver, '--ipam-driver', 'tsipam',
      '--subnet', `${net}.0/24`, '--ip-range', `${net}.128/26`, '--gateway', `${net}.254`,
      '--aux-address', `router=${net}.129`, n,
    ]);
    const ipam = (await inspectNetwork(w(), n)).IPAM;
    t.is(ipam.Driver, 'tsipam');
    t.like(ipam.Config[0], { Subnet: `${net}.0/24`, IPRange: `${net}.128/26`, Gateway: `${net}.254` });
    t.deepEqual(await allocations(), [`${net}.129`, `${net}.254`]);

    await engine.docker(['run', '-d', '--name', `a-${driver}`, '--net', n, 'busybox:local', 'sleep', '600']);
    await engine.docker(['run', '-d', '--name', `b-${driver}`, '--net', n, '--ip', `${net}.10`, 'busybox:local', 'sleep', '600']);
    t.is(await containerIPv4(engine, `a-${driver}`), `${net}.128`, 'first of the range (the aux address is skipped)');
    t.is(await containerIPv4(engine, `b-${driver}`), `${net}.10`, '--ip outside the range but inside the subnet');
    t.deepEqual(await allocations(), [`${net}.10`, `${net}.128`, `${net}.129`, `${net}.254`]);
    // The default route goes to our gateway.
    const route = await engine.exec(`a-${driver}`, ['ip', 'route', 'show', 'default']);
    t.regex(route, new RegExp(`via ${net.replace(/\./g, '\\.')}\\.254`));

    // Bad input: a taken address (its holder named: for tsbridge the endpoint that owns it), the
    // gateway, an address outside the subnet.
    const taken = await engine.tryDocker(['run', '--rm', '--net', n, '--ip', `${net}.10`, 'busybox:local', 'true']);
    t.not(taken.code, 0);
    t.regex(taken.stderr, new RegExp(`address ${net.replace(/\./g, '\\.')}\\.10 in pool .* is already allocated`));
    const gw = await engine.tryDocker(['run', '--rm', '--net', n, '--ip', `${net}.254`, 'busybox:local', 'true']);
    t.not(gw.code, 0);
    t.regex(gw.stderr, /is the gateway of pool|already allocated/);
    const outside = await engine.tryDocker(['run', '--rm', '--net', n, '--ip', '10.99.0.5', 'busybox:local', 'true']);
    t.not(outside.code, 0);
    // The engine checks this one itself, before asking the IPAM.
    t.regex(outside.stderr, /Invalid address 10\.99\.0\.5: It does not belong to any of this network's subnets/);
    t.deepEqual(await allocations(), [`${net}.10`, `${net}.128`, `${net}.129`, `${net}.254`], 'failed runs left nothing');

    await engine.docker(['rm', '-f', `a-${driver}`, `b-${driver}`]);
    t.deepEqual(await allocations(), [`${net}.129`, `${net}.254`]);
    await engine.docker(['network', 'rm', n]);
    t.deepEqual(await allocations(), []);
    t.deepEqual(await w().keysLike('/ipam/pools/'), []);
  });
}

test.serial('auto pools avoid the host routes (docker0) and are distinct per network; IPv6 auto pool with --ipv6', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '--ipam-driver', 'tsipam', 'auto1']);
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', 'auto2']);
  const s1 = (await inspectNetwork(w(), 'auto1')).IPAM.Config[0].Subnet;
  const s2 = (await inspectNetwork(w(), 'auto2')).IPAM.Config[0].Subnet;
  t.not(s1, '172.17.0.0/16', "docker0's subnet is a host route");
  t.not(s1, s2);
  t.regex(s1, /^172\.\d+\.0\.0\/16$/);
  await engine.docker(['run', '--rm', '--net', 'auto2', 'busybox:local', 'true']);
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--ipv6', 'auto6']);
  const cfg = (await inspectNetwork(w(), 'auto6')).IPAM.Config;
  t.true(cfg.some((c: { Subnet: string }) => /^fd17:/.test(c.Subnet)), JSON.stringify(cfg));
  const out = await engine.docker(['run', '--rm', '--net', 'auto6', 'busybox:local', 'ip', '-o', 'addr', 'show', 'eth0']);
  t.regex(out, /inet6 fd17:/);
  await engine.docker(['network', 'rm', 'auto1', 'auto2', 'auto6']);
  t.deepEqual(await allocations(), []);
  t.deepEqual(await w().keysLike('/ipam/pools/'), []);
});

test.serial('an exhausted pool: the CLI shows our message; overlapping subnets are refused', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', '10.52.0.0/30', 'tiny']);
  await engine.docker(['run', '-d', '--name', 'tiny1', '--net', 'tiny', 'busybox:local', 'sleep', '600']);
  const full = await engine.tryDocker(['run', '--rm', '--net', 'tiny', 'busybox:local', 'true']);
  t.not(full.code, 0);
  t.regex(full.stderr, /IpamDriver\.RequestAddress: pool local\/10\.52\.0\.0\/30 is exhausted/);
  t.deepEqual(await allocations(), ['10.52.0.1', '10.52.0.2']);
  const overlap = await engine.tryDocker(['network', 'create', '--ipam-driver', 'tsipam', '--subnet', '10.52.0.0/24', 'over']);
  t.not(overlap.code, 0);
  t.regex(overlap.stderr, /subnet 10\.52\.0\.0\/24 overlaps pool local\/10\.52\.0\.0\/30/);
  await engine.docker(['rm', '-f', 'tiny1']);
  await engine.docker(['network', 'rm', 'tiny']);
  t.deepEqual(await allocations(), []);
  t.deepEqual(await w().keysLike('/ipam/pools/'), []);
  t.deepEqual(await w().keysLike('/ipam/owners/'), []);
});
