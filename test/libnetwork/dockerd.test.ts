// The plugin HTTP layer against a real dockerd 20.10: the engine runs in a test network
// namespace, the plugin process runs IN THAT NAMESPACE (fixtures/plugin-in-netns.ts, with
// recording in-memory backends) on unix sockets in the engine's private plugin dir.
// Checks the call sequences of REAL-CLIENTS.md, the typed values the backends receive, and
// that a backend's error message reaches the docker CLI user.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackground, type BackgroundProcess } from '../harness/background.js';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { waitFor } from '../harness/engine-api.js';
import { NetnsSet } from '../harness/netns.js';
import type { FailRule } from './fixtures/memory-backends.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/plugin-in-netns.ts', import.meta.url));

interface World {
  engine: DockerEngine;
  plugin?: BackgroundProcess;
  /** Start (again) the plugin process inside the engine's namespace and wait until it listens. */
  startPlugin(): Promise<BackgroundProcess>;
  /** Backend calls so far: {method, input}. */
  calls(): Array<{ method: string; input: any }>;
  /** HTTP calls so far as "plugin Method status" strings (e.g. "tsipam IpamDriver.RequestPool 200"). */
  http(): string[];
}

const FAIL: FailRule[] = [
  { method: 'RequestPool', match: '10.67.0.0/24', kind: 'unavailable', message: 'no free pool for 10.67.0.0/24 (test)' },
  { method: 'CreateNetwork', match: 'tsbr-busy', kind: 'conflict', message: 'bridge tsbr-busy belongs to another network (test)' },
];

function lines(file: string): any[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

let world: World | undefined;
const nets = new NetnsSet('ln');
const tmpDirs: string[] = [];

test.before(async () => {
  const host = await nets.add('h');
  const dir = await mkdtemp(join(tmpdir(), 'tsot-lnd-'));
  tmpDirs.push(dir);
  const engine = await startDockerd({ netns: host.path, extraArgs: ['--bridge=none'] });
  const callsFile = join(dir, 'calls.jsonl');
  const httpFile = join(dir, 'http.jsonl');
  const cfg = { driver: 'tsbridge', ipam: 'tsipam', pluginDir: engine.pluginDir, callsFile, httpFile, gateway: '10.68.0.1', fail: FAIL };
  const startPlugin = async () => {
    const plugin = startBackground('node', ['--import=tsx', FIXTURE, JSON.stringify(cfg)], {
      netns: host.path,
      logFile: join(dir, `plugin-${Date.now()}.log`),
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    if (world) world.plugin = plugin;
    await waitFor(async () => plugin.log().includes('READY'), 20_000, () => new Error(`plugin did not start:\n${plugin.log()}`));
    return plugin;
  };
  world = {
    engine,
    startPlugin,
    calls: () => lines(callsFile),
    http: () => lines(httpFile).map((l) => `${l.plugin} ${l.method} ${l.status}`),
  };
  world.plugin = await startPlugin();
  await engine.importBusybox();
});

test.after.always(async () => {
  await world?.engine.stop().catch(() => undefined);
  await world?.plugin?.stop();
  await nets.cleanup();
  for (const dir of tmpDirs) await rm(dir, { recursive: true, force: true });
});

function w(): World {
  if (!world) throw new Error('setup failed');
  return world;
}

test.serial('network create: the engine activates, asks capabilities, then allocates and creates', async (t) => {
  const { engine } = w();
  await engine.docker([
    'network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam',
    '--subnet', '10.66.0.0/24', '--gateway', '10.66.0.254', '--ip-range', '10.66.0.128/25',
    '--aux-address', 'router=10.66.0.200', '--ipam-opt', 'tsipam.x=1',
    '-o', 'com.docker.network.driver.mtu=1400', '-o', 'com.docker.network.bridge.name=tsbr-t1', '--internal', 'n1',
  ]);
  t.deepEqual(w().http(), [
    'tsbridge Plugin.Activate 200',
    'tsbridge NetworkDriver.GetCapabilities 200',
    'tsipam Plugin.Activate 200',
    'tsipam IpamDriver.GetCapabilities 200',
    'tsipam IpamDriver.GetDefaultAddressSpaces 200',
    'tsipam IpamDriver.RequestPool 200',
    'tsipam IpamDriver.RequestAddress 200',
    'tsipam IpamDriver.RequestAddress 200',
    'tsbridge NetworkDriver.CreateNetwork 200',
  ]);
  const calls = w().calls().filter((c) => c.method !== 'GetDefaultAddressSpaces');
  t.deepEqual(calls.map((c) => c.input), [
    { addressSpace: 'TsLocal', pool: '10.66.0.0/24', subPool: '10.66.0.128/25', options: { extra: { 'tsipam.x': '1' } }, v6: false },
    { poolId: 'TsLocal/10.66.0.0/24', address: '10.66.0.254', options: { type: 'gateway', extra: {} } },
    { poolId: 'TsLocal/10.66.0.0/24', address: '10.66.0.200', options: { extra: {} } },
    {
      networkId: calls[3].input.networkId,
      options: { internal: true, enableIPv6: false, mtu: 1400, bridge: { name: 'tsbr-t1' }, driverOpts: {} },
      ipv4: [{ addressSpace: 'TsLocal', pool: '10.66.0.0/24', gateway: '10.66.0.254/24', auxAddresses: { router: '10.66.0.200/24' } }],
      ipv6: [],
    },
  ]);
  t.regex(calls[3].input.networkId, /^[0-9a-f]{64}$/);
});

test.serial('backend and validation errors reach the docker CLI user', async (t) => {
  const { engine } = w();
  const create = (...args: string[]) => engine.tryDocker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', ...args]);
  const ipam = await create('--subnet', '10.67.0.0/24', 'nx1');
  t.not(ipam.code, 0);
  t.regex(ipam.stderr, /IpamDriver\.RequestPool: no free pool for 10\.67\.0\.0\/24 \(test\)/);
  const conflict = await create('--subnet', '10.69.0.0/24', '-o', 'com.docker.network.bridge.name=tsbr-busy', 'nx2');
  t.not(conflict.code, 0);
  t.regex(conflict.stderr, /NetworkDriver\.CreateNetwork: bridge tsbr-busy belongs to another network \(test\)/);
  const mtu = await create('--subnet', '10.70.0.0/24', '-o', 'com.docker.network.driver.mtu=12', 'nx3');
  t.not(mtu.code, 0);
  t.regex(mtu.stderr, /invalid value "12" for option com\.docker\.network\.driver\.mtu/);
  const name = await create('--subnet', '10.71.0.0/24', '-o', 'com.docker.network.bridge.name=a/b', 'nx4');
  t.regex(name.stderr, /invalid value "a\/b" for option com\.docker\.network\.bridge\.name/);
  t.is((await engine.docker(['network', 'ls', '-q', '--filter', 'name=nx'])).trim(), '', 'no network was left half-made');
  const failed = w().http().filter((c) => !c.endsWith(' 200'));
  t.deepEqual(failed, [
    'tsipam IpamDriver.RequestPool 503',
    'tsbridge NetworkDriver.CreateNetwork 409',
    'tsbridge NetworkDriver.CreateNetwork 400',
    'tsbridge NetworkDriver.CreateNetwork 400',
  ]);
});

test.serial('docker run / rm: endpoint sequence, typed port mappings, the IPAM address in the container', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', '10.68.0.0/24', 'n2']);
  const before = w().http().length;
  const out = await engine.docker(['run', '--rm', '--net', 'n2', '-p', '8080:80', '-p', '127.0.0.1:8443:443/udp', 'busybox:local', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
  t.regex(out, /inet 10\.68\.0\.2\/24/);
  const expected = [
    'tsipam IpamDriver.RequestAddress 200',
    'tsbridge NetworkDriver.CreateEndpoint 200',
    'tsbridge NetworkDriver.Join 200',
    'tsbridge NetworkDriver.ProgramExternalConnectivity 200',
    'tsbridge NetworkDriver.EndpointOperInfo 200',
    'tsbridge NetworkDriver.EndpointOperInfo 200',
    'tsbridge NetworkDriver.RevokeExternalConnectivity 200',
    'tsbridge NetworkDriver.Leave 200',
    'tsbridge NetworkDriver.DeleteEndpoint 200',
    'tsipam IpamDriver.ReleaseAddress 200',
  ];
  await waitFor(async () => w().http().length >= before + expected.length, 10_000, () => new Error(`calls: ${w().http().slice(before).join(', ')}`));
  t.deepEqual(w().http().slice(before), expected);
  const ep = w().calls().find((c) => c.method === 'CreateEndpoint')?.input;
  t.deepEqual(ep.interface, { address: '10.68.0.2/24' });
  // (The calls file is JSON: fields that were undefined are absent.)
  t.deepEqual(ep.options.portMappings, [
    { proto: 'udp', containerPort: 443, hostIp: '127.0.0.1', hostPort: 8443, hostPortEnd: 8443 },
    { proto: 'tcp', containerPort: 80, hostPort: 8080, hostPortEnd: 8080 },
  ]);
  const join = w().calls().find((c) => c.method === 'Join')?.input;
  t.true(join.sandboxKey.startsWith('/'));

  const rmBefore = w().http().length;
  await engine.docker(['network', 'rm', 'n1', 'n2']);
  const rmCalls = w().http().slice(rmBefore);
  t.is(rmCalls.filter((c) => c === 'tsbridge NetworkDriver.DeleteNetwork 200').length, 2);
  t.is(rmCalls.filter((c) => c === 'tsipam IpamDriver.ReleasePool 200').length, 2);
});

test.serial('a killed and restarted plugin is reached again without re-activation; teardown stays idempotent', async (t) => {
  const { engine } = w();
  await engine.docker(['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', '10.72.0.0/24', 'n3']);
  // SIGKILL leaves the sockets behind; the new instance must replace them. Its in-memory
  // backends have forgotten n3, so every teardown call meets a not-found.
  const old = w().plugin;
  if (!old) throw new Error('no plugin running');
  process.kill(old.pid, 'SIGKILL');
  // The child is unref'd: a timer keeps the event loop alive until its exit is seen.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([old.exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
  clearTimeout(timer);
  t.true((await stat(join(engine.pluginDir, 'tsbridge.sock'))).isSocket(), 'the killed plugin left its socket');
  await w().startPlugin();
  const before = w().http().length;
  await engine.docker(['network', 'rm', 'n3']);
  t.deepEqual(w().http().slice(before), [
    'tsipam IpamDriver.ReleaseAddress 200',
    'tsipam IpamDriver.ReleasePool 200',
    'tsbridge NetworkDriver.DeleteNetwork 200',
  ]);
});
