// The per-host DNS in namespaces, as the daemon runs it: a "host" with three bridges (one
// internal), containers on them, an upstream namespace with two stub resolvers. Real clients
// (dig, busybox nslookup, Node's resolver) ask the gateway addresses on port 53.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keys } from '../../store/keys.js';
import { SqliteStore } from '../../store/sqlite.js';
import { startBackground, type BackgroundProcess } from '../harness/background.js';
import { tryRun } from '../harness/exec.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { dig, until } from './helpers.js';

const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));

interface World {
  set: NetnsSet;
  dir: string;
  store: SqliteStore;
  resolvConf: string;
  h: Netns;
  cA: Netns;
  cB: Netns;
  cI: Netns;
  cS: Netns;
  procs: BackgroundProcess[];
  dns: BackgroundProcess;
  up1: BackgroundProcess;
}

let w: World | undefined;

async function waitLog(p: BackgroundProcess, re: RegExp, ms = 15_000): Promise<void> {
  const r = await until(async () => re.test(p.log()), ms, 20);
  if (!r.value) throw new Error(`no ${re} in log of pid ${p.pid}:\n${p.log()}`);
}

async function bridge(h: Netns, name: string, cidr: string): Promise<void> {
  await h.ip('link', 'add', name, 'type', 'bridge');
  await h.ip('addr', 'add', cidr, 'dev', name);
  await h.ip('link', 'set', name, 'up');
}

async function container(set: NetnsSet, h: Netns, name: string, br: string, cidr: string): Promise<Netns> {
  const c = await set.add(name);
  await set.link(h, `v${name}`, '', c, 'eth0', cidr);
  await h.ip('link', 'set', `v${name}`, 'master', br);
  return c;
}

const put = (s: SqliteStore, k: string, v: object) => s.put(k, JSON.stringify(v));

test.before(async () => {
  const set = new NetnsSet('dns');
  const dir = mkdtempSync(join(tmpdir(), 'tsot-dnsns-'));
  const procs: BackgroundProcess[] = [];
  w = { set, dir, procs } as unknown as World;
  const h = await set.add('h');
  const u = await set.add('u');
  await set.link(h, 'up0', '10.60.0.1/24', u, 'eth0', '10.60.0.2/24');
  await u.ip('addr', 'add', '10.60.0.3/24', 'dev', 'eth0');
  await bridge(h, 'br0', '10.61.0.1/24');
  await bridge(h, 'br1', '10.62.0.1/24');
  await bridge(h, 'br2', '10.63.0.1/24');
  const cA = await container(set, h, 'cA', 'br0', '10.61.0.2/24');
  const cB = await container(set, h, 'cB', 'br1', '10.62.0.2/24');
  const cI = await container(set, h, 'cI', 'br2', '10.63.0.2/24');
  const cS = await container(set, h, 'cS', 'br0', '10.61.0.77/24');
  const store = SqliteStore.open(join(dir, 'store.db'));
  await put(store, keys.network('neta'), { id: 'neta', name: 'front', driver: 'tsbridge', subnets: ['10.61.0.0/24'], gateways: ['10.61.0.1'] });
  await put(store, keys.network('netb'), { id: 'netb', name: 'back', subnets: ['10.62.0.0/24'], gateways: ['10.62.0.1/24'] });
  await put(store, keys.network('neti'), { id: 'neti', name: 'vault', internal: true, subnets: ['10.63.0.0/24'], gateways: ['10.63.0.1'] });
  await put(store, keys.endpoint('neta', 'ea'), { id: 'ea', networkId: 'neta', hostId: 'h1', containerId: 'ca', name: 'alpha', addresses: ['10.61.0.2/24'] });
  await put(store, keys.endpoint('neta', 'er'), { id: 'er', networkId: 'neta', hostId: 'h2', name: 'remote', addresses: ['10.61.0.9/24'] });
  await put(store, keys.endpoint('netb', 'eb'), { id: 'eb', networkId: 'netb', hostId: 'h1', name: 'beta', addresses: ['10.62.0.2/24'] });
  await put(store, keys.endpoint('neti', 'ei'), { id: 'ei', networkId: 'neti', hostId: 'h1', name: 'secret', addresses: ['10.63.0.2/24'] });
  // 40 endpoints share the alias "crowd": 40 A records do not fit in 512 bytes (TC, then TCP).
  for (let i = 1; i <= 40; i++) {
    await put(store, keys.endpoint('neta', `crowd${i}`), { id: `crowd${i}`, networkId: 'neta', hostId: 'h2', name: `crowd${i}`, aliases: ['crowd'], addresses: [`10.61.1.${i}/16`] });
  }
  const resolvConf = join(dir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 10.60.0.2\n');
  const node = (args: string[], ns: Netns, log: string) => {
    const p = startBackground(process.execPath, ['--import=tsx', ...args], { netns: ns.path, logFile: join(dir, log) });
    procs.push(p);
    return p;
  };
  const up1 = node([fixture('upstream.ts'), '10.60.0.2', '53', '192.0.2.53'], u, 'up1.log');
  const up2 = node([fixture('upstream.ts'), '10.60.0.3', '53', '192.0.2.54'], u, 'up2.log');
  const dns = node([fixture('host-dns.ts'), join(dir, 'store.db'), 'h1', resolvConf], h, 'dns.log');
  Object.assign(w, { h, cA, cB, cI, cS, store, resolvConf, dns, up1 });
  await Promise.all([waitLog(up1, /^ready/m), waitLog(up2, /^ready/m), waitLog(dns, /listening 10\.61\.0\.1:53 10\.62\.0\.1:53 10\.63\.0\.1:53/)]);
});

test.after.always(async () => {
  if (!w) return;
  for (const p of w.procs) await p.stop();
  await w.store?.close();
  await w.set.cleanup();
  rmSync(w.dir, { recursive: true, force: true });
});

const ask = (c: Netns, server: string, ...args: string[]) => dig([`@${server}`, ...args], { netns: c.path });

test.serial('dig in a container: own network names, qualified names, PTR; other networks isolated', async (t) => {
  const { cA, cB } = w!;
  t.deepEqual((await ask(cA, '10.61.0.1', 'alpha')).answers, ['A 10.61.0.2']);
  t.deepEqual((await ask(cA, '10.61.0.1', 'remote.front.tsoverlay')).answers, ['A 10.61.0.9'], 'an endpoint on another host');
  t.deepEqual((await ask(cA, '10.61.0.1', '-x', '10.61.0.9')).answers, ['PTR remote.front.tsoverlay.']);
  t.deepEqual((await ask(cA, '10.61.0.1', '+tcp', 'alpha')).answers, ['A 10.61.0.2'], 'over TCP');
  t.is((await ask(cA, '10.61.0.1', 'beta.back.tsoverlay')).status, 'NXDOMAIN');
  const b = await ask(cA, '10.61.0.1', 'beta');
  t.is(b.status, 'NXDOMAIN', 'not ours: asked upstream, which does not know it');
  t.deepEqual((await ask(cB, '10.62.0.1', 'beta')).answers, ['A 10.62.0.2']);
  t.is((await ask(cB, '10.62.0.1', 'alpha.front.tsoverlay')).status, 'NXDOMAIN');
});

test.serial('busybox nslookup and Node\'s resolver in a container', async (t) => {
  const { cA } = w!;
  const ns = await tryRun('nsenter', [`--net=${cA.path}`, '--', 'busybox', 'nslookup', 'alpha', '10.61.0.1'], { timeoutMs: 15_000 });
  t.regex(ns.stdout, /Address:\s+10\.61\.0\.2/, ns.stdout + ns.stderr);
  const up = await tryRun('nsenter', [`--net=${cA.path}`, '--', 'busybox', 'nslookup', 'www.example.test', '10.61.0.1'], { timeoutMs: 15_000 });
  t.regex(up.stdout, /Address:\s+192\.0\.2\.53/, up.stdout + up.stderr);
  const script = `const r=new (require('node:dns').promises.Resolver)({timeout:2000,tries:1});r.setServers(['10.61.0.1']);
    Promise.all([r.resolve4('remote.front.tsoverlay'), r.resolve4('alpha')]).then(x=>console.log(JSON.stringify(x)),e=>{console.log(e.code);process.exit(1)})`;
  const n = await tryRun('nsenter', [`--net=${cA.path}`, '--', process.execPath, '-e', script], { timeoutMs: 15_000 });
  t.is(n.stdout.trim(), JSON.stringify([['10.61.0.9'], ['10.61.0.2']]), n.stderr);
});

test.serial('truncation: glibc, dig and busybox nslookup with an answer over 512 bytes', async (t) => {
  const { cA, dir } = w!;
  const conf = join(dir, 'container-resolv.conf');
  writeFileSync(conf, 'nameserver 10.61.0.1\noptions timeout:2 attempts:1\n');
  // glibc: in a private mount namespace whose /etc/resolv.conf names our server.
  const g = await tryRun('nsenter', [`--net=${cA.path}`, '--', 'unshare', '--mount', '--', process.execPath, fixture('glibc-lookup.mjs'), conf, 'crowd'], { timeoutMs: 20_000 });
  const addrs = new Set(g.stdout.split('\n').filter((l) => l).map((l) => l.split(/\s+/)[0]));
  t.is(addrs.size, 40, `glibc (TC, then TCP): ${g.stdout}${g.stderr}`);
  const gl = await tryRun('nsenter', [`--net=${cA.path}`, '--', 'unshare', '--mount', '--', process.execPath, fixture('glibc-lookup.mjs'), conf, 'alpha'], { timeoutMs: 20_000 });
  t.regex(gl.stdout, /^10\.61\.0\.2\s/m, 'glibc, A and AAAA asked together');
  const d = await ask(cA, '10.61.0.1', '+noedns', 'crowd');
  t.is(d.answers.length, 40, 'dig retried over TCP');
  const tc = await ask(cA, '10.61.0.1', '+noedns', '+ignore', 'crowd');
  t.true(tc.flags.includes('tc'));
  t.is(tc.answers.length, 30, 'the truncated reply carries the 30 records that fit');
  // busybox nslookup has no TCP: it shows the addresses of the truncated reply.
  const bb = await tryRun('nsenter', [`--net=${cA.path}`, '--', 'busybox', 'nslookup', '-type=a', 'crowd', '10.61.0.1'], { timeoutMs: 15_000 });
  t.is([...bb.stdout.matchAll(/Address:\s+10\.61\.1\.\d+/g)].length, 30, bb.stdout + bb.stderr);
});

test.serial('forwarding: containers on normal networks recurse through the host; internal networks and strangers never', async (t) => {
  const { cA, cI, cS, up1 } = w!;
  const f = await ask(cA, '10.61.0.1', 'www.example.test');
  t.deepEqual(f.answers, ['A 192.0.2.53']);
  t.true(f.flags.includes('ra'));
  t.regex(up1.log(), /query www\.example\.test from 10\.60\.0\.1/, 'forwarded from the host');
  t.deepEqual((await ask(cI, '10.63.0.1', 'secret')).answers, ['A 10.63.0.2'], 'internal network names still resolve');
  t.is((await ask(cI, '10.63.0.1', 'leak.example.test')).status, 'REFUSED');
  t.is((await ask(cS, '10.61.0.1', 'alpha')).status, 'REFUSED', 'not an endpoint of ours');
  t.is((await ask(cS, '10.61.0.1', 'stranger.example.test')).status, 'REFUSED', 'not an open resolver');
  await new Promise((r) => setTimeout(r, 100));
  t.notRegex(up1.log(), /leak\.example\.test|stranger\.example\.test/, 'nothing reached the upstream');
});

test.serial('a name appears within 200 ms of its record (asked from a container) and vanishes', async (t) => {
  const { cA, store, dir } = w!;
  const poller = startBackground(process.execPath, [fixture('poll-name.mjs'), 'late.front.tsoverlay', '10.61.0.1', '53', '10.61.0.10', '5000'], {
    netns: cA.path,
    logFile: join(dir, 'poll.log'),
  });
  t.teardown(() => poller.stop());
  await waitLog(poller, /^ready/m);
  await new Promise((r) => setTimeout(r, 30));
  const t0 = Date.now();
  await put(store, keys.endpoint('neta', 'el'), { id: 'el', networkId: 'neta', hostId: 'h2', name: 'late', addresses: ['10.61.0.10/24'] });
  // The child is unref'd: a timer keeps this process waiting for it.
  t.is(await Promise.race([poller.exited, new Promise<number>((r) => setTimeout(() => r(-1), 7000))]), 0, poller.log());
  const ms = Number(/found (\d+)/.exec(poller.log())![1]) - t0;
  t.log(`visible in a container ${ms} ms after the write`);
  t.true(ms < 200, `${ms} ms`);
  await store.delete(keys.endpoint('neta', 'el'));
  const gone = await until(async () => (await ask(cA, '10.61.0.1', 'late.front.tsoverlay')).status === 'NXDOMAIN', 3000, 5);
  t.truthy(gone.value);
});

test.serial('resolv.conf is re-read when it changes', async (t) => {
  const { cA, resolvConf } = w!;
  writeFileSync(resolvConf, '# moved\nnameserver 10.60.0.3\n');
  const r = await until(async () => (await ask(cA, '10.61.0.1', 'next.example.test')).answers[0] === 'A 192.0.2.54', 5000, 50);
  t.truthy(r.value, 'the new upstream answers');
  writeFileSync(resolvConf, 'nameserver 10.60.0.2\n');
});

test.serial('a new network with an endpoint on this host gets a listener on its gateway', async (t) => {
  const { set, h, store } = w!;
  await bridge(h, 'br3', '10.64.0.1/24');
  const cC = await container(set, h, 'cC', 'br3', '10.64.0.2/24');
  await put(store, keys.network('netc'), { id: 'netc', name: 'late', subnets: ['10.64.0.0/24'], gateways: ['10.64.0.1'] });
  await put(store, keys.endpoint('netc', 'ec'), { id: 'ec', networkId: 'netc', hostId: 'h1', name: 'gamma', addresses: ['10.64.0.2/24'] });
  await waitLog(w!.dns, /listening .*10\.64\.0\.1:53/, 5000);
  t.deepEqual((await ask(cC, '10.64.0.1', 'gamma.late.tsoverlay')).answers, ['A 10.64.0.2']);
});
