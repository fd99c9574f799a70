// Restarts under a real engine: the plugin daemon restarted (SIGTERM and SIGKILL) with running
// containers, the daemon killed between CreateEndpoint and Join, and dockerd restarted. After
// each, containers keep working, new ones start, and nothing leaks (records, addresses, veths).
import test from 'ava';
import { Ipam, ownerForDocker } from '../../ipam/index.js';
import { Kernel } from '../../netlink/index.js';
import { BridgeDriver } from '../../plugins/drivers/bridge/bridge.js';
import { EngineClient } from '../../plugins/libnetwork/adapters/engine-client.js';
import { EngineSync } from '../../plugins/libnetwork/adapters/engine-sync.js';
import { containerIPv4, pingFromContainer } from '../harness/container.js';
import type { Netns } from '../harness/netns.js';
import { eventually, inspectNetwork, logOnFailure, startWorld, type World } from './world.js';

let world: World | undefined;
let client: Netns | undefined;

test.before(async () => {
  world = await startWorld('drs', { logLevel: 'debug' });
  client = await world.nets.add('cli');
  await world.nets.link(world.host, 'vcli', '10.221.0.1/24', client, 'eth0', '10.221.0.2/24');
  await world.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', '10.70.0.0/24', 'rs']);
});
test.afterEach.always((t) => logOnFailure(t, world));

test.after.always(async () => {
  await world?.cleanup();
});

function w(): World {
  if (!world) throw new Error('setup failed');
  return world;
}

const get = () => client!.tryExec('curl', ['-sS', '-m', '3', 'http://10.221.0.1:8090/passwd'], { timeoutMs: 6_000 });

/** Our veth host ends in the engine's namespace. */
async function veths(): Promise<string[]> {
  const out = await w().host.ip('-o', 'link', 'show', 'type', 'veth');
  return out.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n.startsWith('tso') || n.startsWith('tsc'));
}

/** Endpoint records, endpoint allocations and veths: one of each per running container. */
async function inventory() {
  const allocs = (await w().keysLike('/ipam/addresses/')).map((k) => k.split('/').pop()!).filter((a) => a !== '10.70.0.1');
  return { endpoints: (await w().keysLike('/endpoints/')).length, addresses: allocs.length, veths: (await veths()).length };
}

/** The inventory once background teardown (answered before its kernel work) has settled. */
async function settled(n: number) {
  const want = JSON.stringify({ endpoints: n, addresses: n, veths: n });
  const ok = async () => JSON.stringify(await inventory()) === want;
  await eventually(ok, 30_000, `${n} of each`).catch(() => undefined);
  if (!(await ok())) {
    // A daemon killed between a Leave and the engine's DeleteEndpoint, or a start that failed
    // inside the engine, leaves that endpoint's record for the engine GC, which frees what the
    // engine no longer has once past its grace (the daemon runs it a minute after start-up).
    // Run it now with a later clock; records of live containers stay.
    const report = await engineSync(() => Date.now() + 120_000).gc();
    gcNeeded.push(`${n}: ${JSON.stringify(report)}`);
    await eventually(ok, 10_000, `${n} of each after GC`).catch(() => undefined);
  }
  return inventory();
}

/** What settled() needed the GC for (logged by the tests). */
const gcNeeded: string[] = [];
test.afterEach((t) => {
  for (const line of gcNeeded.splice(0)) t.log(`freed by the engine GC: ${line}`);
});

test.serial('the daemon restarted (SIGTERM, then SIGKILL) with running containers: they keep working, new ones start', async (t) => {
  const { engine } = w();
  await engine.docker(['run', '-d', '--name', 'r1', '--net', 'rs', '-p', '8090:80', 'busybox:local', 'httpd', '-f', '-p', '80', '-h', '/etc']);
  await engine.docker(['run', '-d', '--name', 'r2', '--net', 'rs', 'busybox:local', 'sleep', '600']);
  t.is((await get()).code, 0);
  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    if (how === 'SIGKILL') await w().daemon.kill();
    await w().restartDaemon();
    t.true(await pingFromContainer(engine, 'r2', 'r1'), `${how}: running containers still talk`);
    const r = await get();
    t.is(r.code, 0, `${how}: the published port still answers: ${r.stderr}`);
    await engine.docker(['run', '--rm', '--net', 'rs', 'busybox:local', 'ping', '-c', '1', '-W', '2', 'r1']);
  }
  t.deepEqual(await settled(2), { endpoints: 2, addresses: 2, veths: 2 });
  await engine.docker(['rm', '-f', 'r1', 'r2']);
  t.deepEqual(await settled(0), { endpoints: 0, addresses: 0, veths: 0 });
});

// DeleteEndpoint used to be answered before its work: a daemon killed right after left the
// record (and its veth) for the engine GC, a minute after restart. Now the answer comes once the
// record is gone, so when `docker rm -f` returns there is nothing left to collect.
test.serial('docker rm -f returns with the endpoint gone: a daemon killed right after leaves nothing for the GC', async (t) => {
  const { engine } = w();
  await engine.docker(['run', '-d', '--name', 'k1', '--net', 'rs', 'busybox:local', 'sleep', '600']);
  t.deepEqual(await settled(1), { endpoints: 1, addresses: 1, veths: 1 });
  await engine.docker(['rm', '-f', 'k1']);
  await w().daemon.kill();
  t.deepEqual(await inventory(), { endpoints: 0, addresses: 0, veths: 0 }, 'no record, address or veth at the answer');
  await w().restartDaemon();
  t.deepEqual(await inventory(), { endpoints: 0, addresses: 0, veths: 0 });
  t.deepEqual(gcNeeded, [], 'nothing was left for the engine GC');
});

test.serial('the daemon killed between CreateEndpoint and Join: the start succeeds or fails cleanly, nothing leaks', async (t) => {
  const { engine } = w();
  const created = (rec: Record<string, unknown>) => rec.method === 'NetworkDriver.CreateEndpoint' && rec.status === 200;
  const seen = w().daemon.records().filter(created).length;
  const started = engine.tryDocker(['run', '-d', '--name', 'k1', '--net', 'rs', 'busybox:local', 'sleep', '600'], { timeoutMs: 90_000 });
  await w().daemon.waitForLog((rec) => created(rec) && w().daemon.records().filter(created).length > seen, 30_000);
  await w().daemon.kill();
  await w().restartDaemon();
  const r = await started;
  t.log(`docker run: exit ${r.code} ${r.stderr.trim()}`);
  if (r.code === 0) {
    t.regex(await containerIPv4(engine, 'k1'), /^10\.70\.0\./);
    await engine.docker(['run', '--rm', '--net', 'rs', 'busybox:local', 'ping', '-c', '1', '-W', '2', 'k1']);
    t.deepEqual(await settled(1), { endpoints: 1, addresses: 1, veths: 1 });
  }
  await engine.tryDocker(['rm', '-f', 'k1']);
  if (r.code !== 0 && JSON.stringify(await inventory()) !== JSON.stringify({ endpoints: 0, addresses: 0, veths: 0 })) {
    // The engine's rollback of the first CreateEndpoint may never reach us (dockerd retries its
    // plugin calls with an empty body after a refused connection): the engine GC frees what it
    // left once past the grace period — the daemon runs it then; here it runs with a later clock.
    const report = await engineSync(() => Date.now() + 120_000).gc();
    t.log(`left by the failed start, freed by the GC: ${JSON.stringify(report)}`);
  }
  t.deepEqual(await settled(0), { endpoints: 0, addresses: 0, veths: 0 });
});

/** The engine GC of the daemon, run from the test (with its own clock to step past the grace). */
function engineSync(now?: () => number, bridge?: BridgeDriver, ipam?: Ipam): EngineSync {
  const { engine, store, hostId, host } = w();
  const br = bridge ?? new BridgeDriver({ kernel: new Kernel(), store, hostId, hostNetns: host.path });
  return new EngineSync({
    engine: new EngineClient(`unix://${engine.socket}`),
    store,
    ipam: ipam ?? new Ipam(store, { hostId }),
    hostId,
    deleteEndpoint: (ep) => br.deleteEndpoint(ep.networkId, ep.id),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    ...(now ? { now } : {}),
  });
}

test.serial('GC frees endpoint records, veths and addresses the engine no longer has, once past the grace period', async (t) => {
  const { engine, store, hostId, host } = w();
  await engine.docker(['run', '-d', '--name', 'g1', '--net', 'rs', 'busybox:local', 'sleep', '600']);
  const netId = (await inspectNetwork(w(), 'rs')).Id as string;
  // Leaks as a crash during the engine's rollback leaves them: addresses without and with an
  // owner the engine never had, and an endpoint record with its veth.
  const ipam = new Ipam(store, { hostId });
  const poolId = 'local/10.70.0.0/24';
  const ownerless = await ipam.requestAddress(poolId);
  const owned = await ipam.requestAddress(poolId, { owner: ownerForDocker('f'.repeat(64)) });
  const bridge = new BridgeDriver({ kernel: new Kernel(), store, hostId, hostNetns: host.path });
  const ghost = 'e'.repeat(64);
  await bridge.createEndpoint(netId, { id: ghost, addresses: [`${ownerless.address}/24`] });
  await bridge.join(netId, ghost, { mode: 'engine' });
  // (The ghost's veth peer stays in this namespace too: no engine moved it.)
  t.deepEqual(await inventory(), { endpoints: 2, addresses: 3, veths: 3 });
  const sync = (now?: () => number) => engineSync(now, bridge, ipam);
  t.deepEqual(await sync().gc(), { endpoints: [], addresses: [] }, 'young leaks may be calls in flight: left alone');
  const report = await sync(() => Date.now() + 120_000).gc();
  t.deepEqual(report.endpoints, [ghost]);
  t.deepEqual(report.addresses.sort(), [ownerless.address, owned.address].sort());
  t.deepEqual(await inventory(), { endpoints: 1, addresses: 1, veths: 1 }, 'g1 (and the gateway) untouched');
  t.true(await pingFromContainer(engine, 'g1', '10.70.0.1'));
  // The engine's view of g1 reached its record: container id, name.
  const rec = JSON.parse((await store.range('/tsoverlay/v1/endpoints/')).kvs[0]!.value);
  t.like(rec, { names: ['g1'], containerId: JSON.parse(await engine.docker(['inspect', 'g1']))[0].Id });
  await engine.docker(['rm', '-f', 'g1']);
  t.deepEqual(await settled(0), { endpoints: 0, addresses: 0, veths: 0 });
});

test.serial('dockerd restarted: the network still works for restarted and new containers', async (t) => {
  const { engine } = w();
  await engine.docker(['run', '-d', '--name', 'd1', '--net', 'rs', 'busybox:local', 'sleep', '600']);
  await engine.docker(['run', '-d', '--name', 'd2', '--net', 'rs', 'busybox:local', 'sleep', '600']);
  const pid = engine.pid;
  process.kill(pid, 'SIGTERM');
  await eventually(async () => !isAlive(pid), 30_000, 'dockerd to exit');
  engine.launch([]);
  await engine.waitReady(30_000);
  for (const c of ['d1', 'd2']) await engine.start(c, (m) => t.log(m));
  t.true(await pingFromContainer(engine, 'd1', 'd2'), 'restarted containers talk by name');
  await engine.docker(['run', '--rm', '--net', 'rs', 'busybox:local', 'ping', '-c', '1', '-W', '2', 'd1']);
  t.deepEqual(await settled(2), { endpoints: 2, addresses: 2, veths: 2 });
  await engine.docker(['rm', '-f', 'd1', 'd2']);
  await engine.docker(['network', 'rm', 'rs']);
  t.deepEqual(await settled(0), { endpoints: 0, addresses: 0, veths: 0 });
  t.deepEqual(await w().keysLike('/ipam/'), ['/tsoverlay/v1/ipam/spaces/local']);
  t.deepEqual(await w().keysLike('/networks/'), []);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
