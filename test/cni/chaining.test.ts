// Chaining both ways with Debian's containernetworking-plugins: the reference bridge with our
// tsipam (exec'd from CNI_PATH) and tsportmap; our tsbridge with the reference host-local,
// portmap and firewall; our tsbridge + tsipam + tsportmap (and tshost's reservations).
// Published ports are reached from a client namespace linked to the test host.
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startBackground, type BackgroundProcess } from '../harness/background.js';
import { tryRun } from '../harness/exec.js';
import type { Netns } from '../harness/netns.js';
import { conflistAdd, conflistRun, REFERENCE_DIR, type Conflist } from './harness.js';
import { allocations, bridgeConf, hostVeths, iptablesSave, makeWorld, ping, type World } from './world.js';

const hasReference = ['bridge', 'host-local', 'portmap', 'firewall'].every((p) => existsSync(join(REFERENCE_DIR, p)));
const it = hasReference ? test : test.skip;

/** A client namespace linked to the host: the host is 192.168.<n>.1, the client .2. */
async function client(w: World, n: number): Promise<Netns> {
  const c = await w.container('cl');
  await w.nets.link(w.host, 'up0', `192.168.${n}.1/24`, c, 'up1', `192.168.${n}.2/24`);
  return c;
}

/** A TCP server in a container answering "hello <tag>" to every connection. */
function server(t: { teardown(fn: () => unknown): void }, w: World, ns: Netns, port: number, tag: string): BackgroundProcess {
  const p = startBackground('busybox', ['nc', '-ll', '-p', String(port), '-e', 'echo', `hello ${tag}`], { netns: ns.path, logFile: join(w.dir, `nc-${tag}.log`) });
  t.teardown(() => p.stop());
  return p;
}

async function fetchFrom(ns: Netns, ip: string, port: number): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const r = await tryRun('nsenter', [`--net=${ns.path}`, '--', 'busybox', 'nc', '-w', '2', ip, String(port)], { timeoutMs: 5_000 });
    if (r.stdout.trim()) return r.stdout.trim();
    await new Promise((res) => setTimeout(res, 100));
  }
  return '';
}

it('reference bridge + our tsipam (exec) + our tsportmap', async (t) => {
  const w = await makeWorld(t, 'chR');
  const [c1, c2] = [await w.container('c1'), await w.container('c2')];
  const cl = await client(w, 81);
  const list: Conflist = {
    cniVersion: '1.0.0',
    name: 'tsot-ref',
    plugins: [
      { type: 'bridge', bridge: 'refbr0', isGateway: true, ipMasq: true, store: w.store, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.221.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], daemonSocket: join(w.dir, 'none.sock') } },
      { type: 'tsportmap', capabilities: { portMappings: true }, store: w.store, daemonSocket: join(w.dir, 'none.sock') },
    ],
  };
  const rc = { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }] };
  const r1 = await conflistAdd(w.cni, list, w.env(c1, 'ref1'), rc);
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  t.is(r1.json.ips[0].address, '10.221.0.2/24', 'tsipam allocated for the reference bridge');
  const r2 = await conflistAdd(w.cni, { ...list, plugins: [list.plugins[0]!] }, w.env(c2, 'ref2'));
  t.is(r2.code, 0, r2.stdout);
  t.true(await ping(c2, '10.221.0.2'));
  server(t, w, c1, 80, 'ref');
  t.is(await fetchFrom(cl, '192.168.81.1', 8081), 'hello ref', 'published port reached from the client namespace');
  for (const r of await conflistRun(w.cni, 'CHECK', list, w.env(c1, 'ref1'), r1.json, rc)) t.is(r.code, 0, r.stdout);
  for (const r of await conflistRun(w.cni, 'DEL', list, w.env(c1, 'ref1'), r1.json, rc)) t.is(r.code, 0, r.stdout);
  t.is((await w.cni('bridge', 'DEL', { ...list.plugins[0], name: list.name, cniVersion: '1.0.0' }, w.env(c2, 'ref2'))).code, 0);
  t.deepEqual(await allocations(w.store), []);
  t.notRegex(await iptablesSave(w.host), /DNAT --to-destination 10\.221/);
});

it('our tsbridge + reference host-local, portmap and firewall', async (t) => {
  const w = await makeWorld(t, 'chT');
  const c1 = await w.container('c1');
  const cl = await client(w, 82);
  const dataDir = join(w.dir, 'host-local');
  const list: Conflist = {
    cniVersion: '1.0.0',
    name: 'tsot-mix',
    plugins: [
      { ...bridgeConf(w, '10.222.0.0/24'), ipam: { type: 'host-local', ranges: [[{ subnet: '10.222.0.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
    ],
  };
  const rc = { portMappings: [{ hostPort: 8082, containerPort: 80, protocol: 'tcp' }] };
  const r = await conflistAdd(w.cni, list, w.env(c1, 'mix1'), rc);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(r.json.ips[0].address, '10.222.0.2/24');
  t.true(readdirSync(join(dataDir, 'tsot-mix')).includes('10.222.0.2'), 'host-local recorded the lease');
  server(t, w, c1, 80, 'mix');
  t.is(await fetchFrom(cl, '192.168.82.1', 8082), 'hello mix');
  // The reference portmap 1.1.1 fails its own CHECK without an IPv6 address ("could not check
  // ipv6 dnat"): CHECK the other two.
  const checkable = { ...list, plugins: list.plugins.filter((p) => p.type !== 'portmap') };
  for (const x of await conflistRun(w.cni, 'CHECK', checkable, w.env(c1, 'mix1'), r.json, rc)) t.is(x.code, 0, x.stdout);
  for (const x of await conflistRun(w.cni, 'DEL', list, w.env(c1, 'mix1'), r.json, rc)) t.is(x.code, 0, x.stdout);
  t.false(readdirSync(join(dataDir, 'tsot-mix')).includes('10.222.0.2'), 'host-local released the lease');
  t.deepEqual(await hostVeths(w.host), []);
});

test('tsbridge + tsipam + tsportmap: published port, conflicts are 101 (also against tshost), DEL removes the rules', async (t) => {
  const w = await makeWorld(t, 'chO');
  const [c1, c2] = [await w.container('c1'), await w.container('c2')];
  const cl = await client(w, 83);
  const pm = { type: 'tsportmap', capabilities: { portMappings: true }, store: w.store, daemonSocket: join(w.dir, 'none.sock') };
  const list: Conflist = { cniVersion: '1.0.0', name: 'tsot-own', plugins: [bridgeConf(w, '10.223.0.0/24'), pm] };
  const rc = { portMappings: [{ hostPort: 8083, containerPort: 80, protocol: 'tcp' }, { hostPort: 8053, containerPort: 53, protocol: 'udp' }] };
  const r1 = await conflistAdd(w.cni, list, w.env(c1, 'own1'), rc);
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  t.deepEqual(r1.json.ips, [{ address: '10.223.0.2/24', gateway: '10.223.0.1', interface: 2 }], 'tsportmap passes the result through');
  server(t, w, c1, 80, 'own');
  t.is(await fetchFrom(cl, '192.168.83.1', 8083), 'hello own');
  for (const x of await conflistRun(w.cni, 'CHECK', list, w.env(c1, 'own1'), r1.json, rc)) t.is(x.code, 0, x.stdout);

  const clash = await conflistAdd(w.cni, list, w.env(c2, 'own2'), { portMappings: [{ hostPort: 8083, containerPort: 80 }] });
  t.is(clash.json?.code, 101, clash.stdout);
  t.regex(clash.json.msg, /8083/);
  // The runtime cleans up after a failed ADD: DEL of the whole list.
  for (const x of await conflistRun(w.cni, 'DEL', list, w.env(c2, 'own2'), undefined)) t.is(x.code, 0, x.stdout);
  const host = { cniVersion: '1.0.0', name: 'tsot-host', type: 'tshost', capabilities: { portMappings: true }, store: w.store, daemonSocket: join(w.dir, 'none.sock') };
  const hostClash = await w.cni('tshost', 'ADD', { ...host, runtimeConfig: { portMappings: [{ hostPort: 8083, containerPort: 8083 }] } }, w.env(c2, 'hostc'));
  t.is(hostClash.json?.code, 101, hostClash.stdout);
  const hostOk = await w.cni('tshost', 'ADD', { ...host, runtimeConfig: { portMappings: [{ hostPort: 9090, containerPort: 9090 }] } }, w.env(c2, 'hostc'));
  t.is(hostOk.code, 0, hostOk.stdout);
  t.deepEqual(hostOk.json, { cniVersion: '1.0.0' }, 'tshost adds no interface or address');
  t.deepEqual(await linkNames2(c2), ['lo'], 'tshost created nothing in the container namespace');
  const taken9090 = await conflistAdd(w.cni, list, w.env(c2, 'own3'), { portMappings: [{ hostPort: 9090, containerPort: 80 }] });
  t.is(taken9090.json?.code, 101, 'a port tshost reserved cannot be published');
  for (const x of await conflistRun(w.cni, 'DEL', list, w.env(c2, 'own3'), undefined)) t.is(x.code, 0, x.stdout);
  t.is((await w.cni('tshost', 'DEL', host, w.env(c2, 'hostc'))).code, 0);

  for (const x of await conflistRun(w.cni, 'DEL', list, w.env(c1, 'own1'), r1.json, rc)) t.is(x.code, 0, x.stdout);
  const rules = await iptablesSave(w.host);
  t.notRegex(rules, /DNAT --to-destination/);
  t.deepEqual(await hostVeths(w.host), []);
  t.deepEqual(await allocations(w.store), []);
  t.false(await ping(cl, '10.223.0.2'), 'nothing routes to the old address');
});

async function linkNames2(ns: Netns): Promise<string[]> {
  return (JSON.parse(await ns.ip('-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname);
}
