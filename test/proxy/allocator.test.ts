// Host-port reservations over the real embedded store, shared by two allocators (as the daemon
// and a standalone CNI plugin share it), and random choice around a real listening socket.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostPortAllocator, readListeners, type PortWant } from '../../proxy/allocator.js';
import { NetnsTools } from '../../proxy/exec.js';
import { keys, SqliteStore } from '../../store/index.js';
import { run } from '../harness/exec.js';
import { NetnsSet } from '../harness/netns.js';

const want = (proto: 'tcp' | 'udp', hostIps: string[], hostPort: number, hostPortEnd = hostPort): PortWant => ({ proto, hostIps, hostPort, hostPortEnd });

function withStore() {
  const dir = mkdtempSync(join(tmpdir(), 'tso-alloc-'));
  const store = SqliteStore.open(join(dir, 'store.db'));
  return { store, done: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('wildcard and specific addresses conflict per protocol and family, across allocators', async (t) => {
  const { store, done } = withStore();
  t.teardown(done);
  const a = new HostPortAllocator({ hostId: 'h1', store });
  const b = new HostPortAllocator({ hostId: 'h1', store });
  await a.reserve('ep-a', [want('tcp', ['0.0.0.0'], 8080), want('tcp', ['10.0.0.1'], 9090)]);
  await t.throwsAsync(b.reserve('ep-b', [want('tcp', ['10.0.0.1'], 8080)]), { code: 'port-taken' });
  await t.throwsAsync(b.reserve('ep-b', [want('tcp', ['0.0.0.0'], 9090)]), { code: 'port-taken' });
  await b.reserve('ep-b', [want('udp', ['0.0.0.0'], 8080), want('tcp', ['::'], 8080), want('tcp', ['10.0.0.2'], 9090)]);
  const held = JSON.parse((await store.get(keys.hostPort('h1', 'tcp', '0.0.0.0', 8080)))!.value);
  t.is(held.owner, 'ep-a');
  // Another host's ports are its own business.
  await new HostPortAllocator({ hostId: 'h2', store }).reserve('ep-c', [want('tcp', ['0.0.0.0'], 8080)]);
});

test('all or nothing; release frees; the same owner asking again keeps its ports', async (t) => {
  const { store, done } = withStore();
  t.teardown(done);
  const a = new HostPortAllocator({ hostId: 'h1', store });
  const b = new HostPortAllocator({ hostId: 'h1', store });
  await a.reserve('ep-a', [want('tcp', ['0.0.0.0'], 8080)]);
  await t.throwsAsync(b.reserve('ep-b', [want('tcp', ['0.0.0.0'], 7000), want('tcp', ['0.0.0.0'], 8080)]), { code: 'port-taken' });
  t.is(await store.get(keys.hostPort('h1', 'tcp', '0.0.0.0', 7000)), undefined, 'the first one was given back');
  const again = await a.reserve('ep-a', [want('tcp', ['0.0.0.0'], 8080)]);
  t.deepEqual(again, [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
  await t.throwsAsync(a.reserve('ep-a', [want('tcp', ['0.0.0.0'], 6000), want('tcp', ['0.0.0.0'], 6000)]), { code: 'port-taken' }, 'twice in one call');
  await a.release('ep-a', again);
  await b.reserve('ep-b', [want('tcp', ['10.0.0.1'], 8080)]);
});

test('racing reservations of one port: exactly one wins', async (t) => {
  const { store, done } = withStore();
  t.teardown(done);
  const ips = ['0.0.0.0', '10.0.0.1', '10.0.0.2', '0.0.0.0', '10.0.0.3', '0.0.0.0'];
  const results = await Promise.allSettled(ips.map((ip, i) => new HostPortAllocator({ hostId: 'h1', store }).reserve(`ep${i}`, [want('tcp', [ip], 7000)])));
  const won = results.map((r, i) => (r.status === 'fulfilled' ? ips[i] : undefined)).filter(Boolean) as string[];
  t.true(won.length >= 1);
  // Either one wildcard alone, or specific addresses only (all different).
  if (won.includes('0.0.0.0')) t.is(won.length, 1, won.join());
  else t.is(new Set(won).size, won.length);
});

test('random ports avoid listeners of the target namespace and other reservations', async (t) => {
  const set = new NetnsSet('pa');
  t.teardown(() => set.cleanup());
  const ns = await set.add('h');
  const server = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', "require('net').createServer().listen(20000, () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (server.exitCode === null && server.pid) process.kill(server.pid, 'SIGKILL');
  });
  await new Promise((resolve) => server.stdout!.once('data', resolve));
  const tools = new NetnsTools(ns.path);
  t.true((await readListeners(tools)).some((l) => l.proto === 'tcp' && l.port === 20000));
  const a = new HostPortAllocator({ hostId: 'h1', range: [20000, 20003], listeners: () => readListeners(tools) });
  const got = await a.reserve('ep', [want('tcp', ['0.0.0.0'], 0), want('tcp', ['0.0.0.0'], 0), want('tcp', ['0.0.0.0', '::'], 0)]);
  t.deepEqual([...new Set(got.map((r) => r.hostPort))].sort(), [20001, 20002, 20003]);
  await t.throwsAsync(a.reserve('ep2', [want('tcp', ['0.0.0.0'], 0)]), { code: 'port-exhausted' });
  await t.throwsAsync(a.reserve('ep2', [want('tcp', ['0.0.0.0'], 20000)]), { code: 'port-taken' }, 'a fixed port held by a listener');
  t.is((await a.reserve('ep2', [want('udp', ['0.0.0.0'], 0)]))[0]!.proto, 'udp');
});

test('listeners read from /proc/net (own namespace) match ss (another namespace)', async (t) => {
  const set = new NetnsSet('pl');
  t.teardown(() => set.cleanup());
  const ns = await set.add('h');
  const script = "const n=require('net'),d=require('dgram');n.createServer().listen(20010,'127.0.0.1');n.createServer().listen(20011,'::');d.createSocket('udp4').bind(20012,()=>console.log('up'))";
  const server = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (server.exitCode === null && server.pid) process.kill(server.pid, 'SIGKILL');
  });
  await new Promise((resolve) => server.stdout!.once('data', resolve));
  const viaSs = await readListeners(new NetnsTools(ns.path));
  const mod = new URL('../../proxy/allocator.ts', import.meta.url).href;
  const exec = new URL('../../proxy/exec.ts', import.meta.url).href;
  const code = `const { readListeners } = await import('${mod}'); const { NetnsTools } = await import('${exec}'); console.log(JSON.stringify(await readListeners(new NetnsTools())));`;
  const own = JSON.parse(await run('nsenter', [`--net=${ns.path}`, '--', process.execPath, '--import=tsx', '--input-type=module', '-e', code])) as unknown[];
  const norm = (l: unknown[]) => l.map((x) => JSON.stringify(x)).sort();
  t.deepEqual(norm(own), norm(viaSs));
  t.deepEqual(norm(viaSs), norm([{ proto: 'tcp', ip: '127.0.0.1', port: 20010 }, { proto: 'tcp', ip: '*', port: 20011 }, { proto: 'udp', ip: '*', port: 20012 }]));
});
