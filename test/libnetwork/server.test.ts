// Contract test of the plugin HTTP layer: real unix sockets, requests shaped exactly as
// dockerd 20.10 sends them, in-memory backends that record what reached them.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPluginServer, type PluginServer } from '../../plugins/libnetwork/server.js';
import { MemoryDriver, MemoryIpam, Recorder } from './fixtures/memory-backends.js';
import { callPlugin } from './plugin-client.js';

const NET = 'a'.repeat(64);
const EP = 'b'.repeat(64);

interface Fixture {
  dir: string;
  server: PluginServer;
  rec: Recorder;
  bridge: MemoryDriver;
  ipam: MemoryIpam;
  sock(name: string): string;
}

async function start(t: any, extra: Partial<Parameters<typeof startPluginServer>[0]> = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-plug-'));
  const rec = new Recorder();
  const bridge = new MemoryDriver(rec);
  const ipam = new MemoryIpam(rec);
  const server = await startPluginServer({
    pluginDir: join(dir, 'plugins'),
    drivers: { tsbridge: bridge, tsoverlay: new MemoryDriver(rec, { scope: 'global', connectivityScope: 'global' }) },
    ipam: { name: 'tsipam', backend: ipam },
    ...extra,
  });
  t.teardown(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, server, rec, bridge, ipam, sock: (name) => join(dir, 'plugins', `${name}.sock`) };
}

test('activation and capabilities answer empty-bodied requests', async (t) => {
  const f = await start(t);
  const act = await callPlugin(f.sock('tsbridge'), '/Plugin.Activate');
  t.is(act.status, 200);
  t.deepEqual(act.body, { Implements: ['NetworkDriver'] });
  t.true(act.contentType.startsWith('application/vnd.docker.plugins.v1'));
  t.deepEqual((await callPlugin(f.sock('tsipam'), '/Plugin.Activate')).body, { Implements: ['IpamDriver'] });
  t.deepEqual((await callPlugin(f.sock('tsbridge'), '/NetworkDriver.GetCapabilities')).body, { Scope: 'local' });
  t.deepEqual((await callPlugin(f.sock('tsoverlay'), '/NetworkDriver.GetCapabilities')).body, {
    Scope: 'global',
    ConnectivityScope: 'global',
  });
  t.deepEqual((await callPlugin(f.sock('tsipam'), '/IpamDriver.GetCapabilities')).body, {
    RequiresMACAddress: false,
    RequiresRequestReplay: false,
  });
  t.deepEqual((await callPlugin(f.sock('tsipam'), '/IpamDriver.GetDefaultAddressSpaces')).body, {
    LocalDefaultAddressSpace: 'TsLocal',
    GlobalDefaultAddressSpace: 'TsGlobal',
  });
  t.deepEqual(f.server.endpoints, {
    tsbridge: `unix://${f.sock('tsbridge')}`,
    tsoverlay: `unix://${f.sock('tsoverlay')}`,
    tsipam: `unix://${f.sock('tsipam')}`,
  });
});

test('the `docker network create` sequence reaches the backends typed', async (t) => {
  const f = await start(t);
  const ipam = f.sock('tsipam');
  const pool = await callPlugin(ipam, '/IpamDriver.RequestPool', {
    AddressSpace: 'TsLocal', Pool: '10.9.0.0/24', SubPool: '10.9.0.128/25', Options: { 'tsipam.x': '1' }, V6: false,
  });
  t.is(pool.status, 200);
  t.deepEqual(pool.body, { PoolID: 'TsLocal/10.9.0.0/24', Pool: '10.9.0.0/24', Data: {} });
  const gw = await callPlugin(ipam, '/IpamDriver.RequestAddress', {
    PoolID: 'TsLocal/10.9.0.0/24', Address: '10.9.0.1', Options: { RequestAddressType: 'com.docker.network.gateway' },
  });
  t.deepEqual(gw.body, { Address: '10.9.0.1/24', Data: {} });
  const create = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': { 'com.docker.network.driver.mtu': '1400' } },
    IPv4Data: [{ AddressSpace: 'TsLocal', Gateway: '10.9.0.1/24', Pool: '10.9.0.0/24' }],
    IPv6Data: [],
  });
  t.is(create.status, 200);
  t.deepEqual(create.body, {});
  t.deepEqual(f.rec.methods(), ['RequestPool', 'RequestAddress', 'CreateNetwork']);
  t.deepEqual(f.rec.calls[0].input, {
    addressSpace: 'TsLocal', pool: '10.9.0.0/24', subPool: '10.9.0.128/25', options: { extra: { 'tsipam.x': '1' } }, v6: false,
  });
  t.deepEqual(f.rec.calls[1].input, { poolId: 'TsLocal/10.9.0.0/24', address: '10.9.0.1', options: { type: 'gateway', extra: {} } });
  t.deepEqual(f.rec.calls[2].input, {
    networkId: NET,
    options: { internal: false, enableIPv6: false, mtu: 1400, bridge: {}, driverOpts: {} },
    ipv4: [{ addressSpace: 'TsLocal', pool: '10.9.0.0/24', gateway: '10.9.0.1/24', auxAddresses: {} }],
    ipv6: [],
  });
  const ids = new Set(f.rec.calls.map((c) => c.requestId));
  t.is(ids.size, 3, 'every request has its own ID');
});

test('network errors are {Err} with a status from the kind; IPAM errors carry Error', async (t) => {
  const f = await start(t);
  const bad = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.CreateNetwork', {
    NetworkID: NET, Options: { 'com.docker.network.generic': { 'com.docker.network.driver.mtu': '12' } },
  });
  t.is(bad.status, 400);
  t.deepEqual(Object.keys(bad.body), ['Err']);
  t.regex(bad.body.Err, /com\.docker\.network\.driver\.mtu/);
  t.regex(bad.body.Err, /"12"/);
  t.deepEqual(f.rec.calls, [], 'a bad option never reaches the backend');

  f.rec.failNext('CreateNetwork', 'conflict', 'bridge br0 belongs to another network');
  const conflict = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.CreateNetwork', { NetworkID: NET });
  t.is(conflict.status, 409);
  t.deepEqual(conflict.body, { Err: 'bridge br0 belongs to another network' });

  const missing = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.CreateEndpoint', { NetworkID: 'nope', EndpointID: EP });
  t.is(missing.status, 404);
  t.deepEqual(missing.body, { Err: 'network nope not found' });

  f.rec.failNext('RequestPool', 'unavailable', 'no free pool');
  const pool = await callPlugin(f.sock('tsipam'), '/IpamDriver.RequestPool', { AddressSpace: 'TsLocal', V6: false });
  t.is(pool.status, 503);
  t.deepEqual(pool.body, { Error: 'no free pool', Err: 'no free pool' });

  const badIp = await callPlugin(f.sock('tsipam'), '/IpamDriver.RequestAddress', { PoolID: 'p', Address: '10.1.1' });
  t.is(badIp.status, 400);
  t.regex(badIp.body.Error, /Address "10\.1\.1"/);

  const subOnly = await callPlugin(f.sock('tsipam'), '/IpamDriver.RequestPool', { AddressSpace: 'TsLocal', SubPool: '10.0.0.0/25' });
  t.is(subOnly.status, 400);

  const crash = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.CreateNetwork', { NetworkID: '../../etc' });
  t.is(crash.status, 400);
  t.regex(crash.body.Err, /NetworkID/);
});

test('unknown methods are 404; malformed bodies are 400 in the role\'s error shape', async (t) => {
  const f = await start(t);
  const unknown = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.Teleport', {});
  t.is(unknown.status, 404);
  t.regex(unknown.body.Err, /unknown method/);
  t.is((await callPlugin(f.sock('tsbridge'), '/IpamDriver.RequestPool', {})).status, 404, 'a driver socket has no IPAM');
  t.is((await callPlugin(f.sock('tsipam'), '/NetworkDriver.Join', {})).status, 404);
  t.is((await callPlugin(f.sock('tsbridge'), '/Plugin.Activate', undefined, { httpMethod: 'GET' })).status, 404);
  const broken = await callPlugin(f.sock('tsipam'), '/IpamDriver.RequestPool', undefined, { rawBody: '{"AddressSpace":' });
  t.is(broken.status, 400);
  t.truthy(broken.body.Error);
  const arr = await callPlugin(f.sock('tsbridge'), '/NetworkDriver.DeleteNetwork', [1]);
  t.is(arr.status, 400);
  t.regex(arr.body.Err, /JSON object/);
});

test('endpoint lifecycle: derived MAC returned, engine-set fields never echoed', async (t) => {
  const f = await start(t);
  const s = f.sock('tsbridge');
  await callPlugin(s, '/NetworkDriver.CreateNetwork', { NetworkID: NET, IPv4Data: [{ AddressSpace: 'x', Pool: '10.9.0.0/24', Gateway: '10.9.0.1/24' }] });
  f.bridge.derivedMac = '02:42:0A:09:00:02';
  const created = await callPlugin(s, '/NetworkDriver.CreateEndpoint', {
    NetworkID: NET, EndpointID: EP, Interface: { Address: '10.9.0.2/24', AddressIPv6: '', MacAddress: '' },
    Options: {
      'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }],
      'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }],
    },
  });
  t.deepEqual(created.body, { Interface: { MacAddress: '02:42:0a:09:00:02' } });
  const input = f.rec.calls.at(-1)?.input as any;
  t.deepEqual(input.interface, { address: '10.9.0.2/24', addressIPv6: undefined, macAddress: undefined });
  t.deepEqual(input.options.portMappings[0], { proto: 'tcp', containerIp: undefined, containerPort: 80, hostIp: undefined, hostPort: 8080, hostPortEnd: 8080 });

  // The engine already set the MAC (--mac-address): an equal answer is dropped, a different one is a driver bug.
  const ep2 = 'c'.repeat(64);
  const mac = Buffer.from([2, 0x42, 10, 9, 0, 2]).toString('base64');
  const same = await callPlugin(s, '/NetworkDriver.CreateEndpoint', {
    NetworkID: NET, EndpointID: ep2, Interface: { Address: '10.9.0.3/24', MacAddress: '02:42:0a:09:00:02' },
    Options: { 'com.docker.network.endpoint.macaddress': mac },
  });
  t.deepEqual(same.body, {});
  t.is((f.rec.calls.at(-1)?.input as any).options.macAddress, '02:42:0a:09:00:02');
  f.bridge.derivedMac = '02:42:0a:09:00:99';
  const differs = await callPlugin(s, '/NetworkDriver.CreateEndpoint', {
    NetworkID: NET, EndpointID: 'e'.repeat(64), Interface: { MacAddress: '02:42:0a:09:00:05' },
  });
  t.is(differs.status, 500);
  t.regex(differs.body.Err, /macAddress 02:42:0a:09:00:99 but the engine set 02:42:0a:09:00:05/);
  f.bridge.derivedMac = undefined;
  const ep3 = 'd'.repeat(64);
  const plain = await callPlugin(s, '/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: ep3, Interface: { Address: '10.9.0.4/24' } });
  t.deepEqual(plain.body, {});

  const join = await callPlugin(s, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/abc', Options: {} });
  t.deepEqual(join.body, { InterfaceName: { SrcName: 'vethbbbbbbb', DstPrefix: 'eth' }, Gateway: '10.9.0.1' });
  t.deepEqual((await callPlugin(s, '/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: null })).body, {});
  t.deepEqual((await callPlugin(s, '/NetworkDriver.EndpointOperInfo', { NetworkID: NET, EndpointID: EP })).body, { Value: { endpoint: EP } });
  t.is((await callPlugin(s, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP, SandboxKey: 'relative' })).status, 400);
});

test('teardown is idempotent and EndpointOperInfo never fails for unknown endpoints', async (t) => {
  const f = await start(t);
  const s = f.sock('tsbridge');
  const ref = { NetworkID: NET, EndpointID: EP };
  t.deepEqual((await callPlugin(s, '/NetworkDriver.EndpointOperInfo', ref)).body, { Value: {} });
  for (const m of ['RevokeExternalConnectivity', 'Leave', 'DeleteEndpoint']) {
    const r = await callPlugin(s, `/NetworkDriver.${m}`, ref);
    t.is(r.status, 200, m);
    t.deepEqual(r.body, {}, m);
  }
  t.deepEqual((await callPlugin(s, '/NetworkDriver.DeleteNetwork', { NetworkID: NET })).body, {});
  t.deepEqual((await callPlugin(f.sock('tsipam'), '/IpamDriver.ReleasePool', { PoolID: 'gone' })).body, {});
  // Program on a missing endpoint must fail loudly: the engine ignores a 404 from it.
  const program = await callPlugin(s, '/NetworkDriver.ProgramExternalConnectivity', ref);
  t.is(program.status, 500);
  t.regex(program.body.Err, /not found/);
  // Optional methods absent from the backend still answer.
  t.deepEqual((await callPlugin(s, '/NetworkDriver.AllocateNetwork', { NetworkID: NET, Options: {} })).body, { Options: {} });
  t.deepEqual((await callPlugin(s, '/NetworkDriver.FreeNetwork', { NetworkID: NET })).body, {});
  t.deepEqual((await callPlugin(s, '/NetworkDriver.DiscoverNew', { DiscoveryType: 1, DiscoveryData: { Address: '10.0.0.1', self: true } })).body, {});
});

test('sockets: dir created, mode 0660 root-owned, stale replaced, live refused, removed on close', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-plug-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pluginDir = join(dir, 'run', 'plugins');
  const stale = join(pluginDir, 'tsbridge.sock');
  // A socket file left by a killed process: bind it in a child that dies without cleanup.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `require('fs').mkdirSync(${JSON.stringify(pluginDir)},{recursive:true});require('net').createServer().listen(${JSON.stringify(stale)},()=>process.kill(process.pid,'SIGKILL'))`]);
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  t.true((await stat(stale)).isSocket(), 'stale socket exists');
  const rec = new Recorder();
  const server = await startPluginServer({ pluginDir, drivers: { tsbridge: new MemoryDriver(rec) }, ipam: { name: 'tsipam', backend: new MemoryIpam(rec) } });
  try {
    for (const name of ['tsbridge', 'tsipam']) {
      const st = await stat(join(pluginDir, `${name}.sock`));
      t.true(st.isSocket());
      t.is(st.mode & 0o777, 0o660, `${name} mode`);
      if (process.getuid?.() === 0) t.deepEqual([st.uid, st.gid], [0, 0]);
    }
    t.is((await callPlugin(stale, '/Plugin.Activate')).status, 200, 'the stale socket was replaced');
    const err = await t.throwsAsync(startPluginServer({ pluginDir, drivers: { tsbridge: new MemoryDriver(rec) } }));
    t.is((err as any).code, 'socket-in-use');
    t.is((await callPlugin(stale, '/Plugin.Activate')).status, 200, 'the live server survived');
    await writeFile(join(pluginDir, 'tshost.sock'), 'not a socket');
    const occupied = await t.throwsAsync(startPluginServer({ pluginDir, drivers: { tshost: new MemoryDriver(rec) } }));
    t.is((occupied as any).code, 'socket-path-occupied');
    await t.throwsAsync(startPluginServer({ pluginDir, drivers: { '../evil': new MemoryDriver(rec) } }), { message: /invalid plugin name/ });
  } finally {
    await server.close();
  }
  await t.throwsAsync(stat(join(pluginDir, 'tsbridge.sock')), { code: 'ENOENT' });
  await t.throwsAsync(stat(join(pluginDir, 'tsipam.sock')), { code: 'ENOENT' });
});

test('tcp mode: loopback only, one port per name, spec files written and removed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-plug-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rec = new Recorder();
  const specDir = join(dir, 'specs');
  const server = await startPluginServer({
    drivers: { tsbridge: new MemoryDriver(rec) },
    ipam: { name: 'tsipam', backend: new MemoryIpam(rec) },
    tcp: { specDir },
  });
  try {
    for (const name of ['tsbridge', 'tsipam']) {
      const url = server.endpoints[name];
      t.regex(url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      t.is((await readFile(join(specDir, `${name}.spec`), 'utf8')).trim(), url);
      const port = Number(url.split(':').at(-1));
      const act = await callPlugin({ host: '127.0.0.1', port }, '/Plugin.Activate');
      t.deepEqual(act.body.Implements, [name === 'tsipam' ? 'IpamDriver' : 'NetworkDriver']);
    }
  } finally {
    await server.close();
  }
  await t.throwsAsync(stat(join(specDir, 'tsbridge.spec')), { code: 'ENOENT' });
  await t.throwsAsync(startPluginServer({ drivers: { x: new MemoryDriver(rec) }, tcp: { host: '0.0.0.0' } }), { message: /loopback/ });
});

test('one name may serve both roles', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-plug-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rec = new Recorder();
  const server = await startPluginServer({ pluginDir: dir, drivers: { tsall: new MemoryDriver(rec) }, ipam: { name: 'tsall', backend: new MemoryIpam(rec) } });
  t.teardown(() => server.close());
  t.deepEqual((await callPlugin(join(dir, 'tsall.sock'), '/Plugin.Activate')).body, { Implements: ['NetworkDriver', 'IpamDriver'] });
});
