// The overlay's two front ends on two real host namespaces and a real etcd: the Docker remote
// driver `tsoverlay` (with tsipam) called over its unix socket exactly as dockerd 20.10 calls a
// global-scope driver (CreateNetwork on one host only; the engine's part of Join — moving SrcName
// into the sandbox — done here), and the `tsoverlay` CNI executable handing off to a daemon route.
import test from 'ava';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ipam } from '../../ipam/index.js';
import { HANDOFF_PATH } from '../../plugins/cni/handoff.js';
import { serveHandOff } from '../../plugins/cni/handoff-server.js';
import { daemonCniContext } from '../../plugins/cni/specs.js';
import { tsoverlaySpec } from '../../plugins/cni/tsoverlay.js';
import { DockerIpam } from '../../plugins/libnetwork/adapters/ipam.js';
import { DockerOverlayNetwork } from '../../plugins/libnetwork/adapters/overlay.js';
import { startPluginServer } from '../../plugins/libnetwork/server.js';
import { call, ROOT } from '../cni/harness.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { callPlugin } from '../libnetwork/plugin-client.js';
import { fdbMacs, overlayWorld, ping, pingUntil, until, type OverlayHost, type World } from './world.js';

let cluster: EtcdCluster | undefined;
test.before(async () => {
  cluster = await startEtcdCluster({ members: 3 });
});
test.after.always(async () => {
  await cluster?.stop();
});

async function tmp(t: { teardown(fn: () => unknown): void }, tag: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tsot-${tag}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---- Docker ----

/** This host's plugin sockets (tsoverlay + tsipam), served from this process into its namespace. */
async function dockerPlugins(t: { teardown(fn: () => unknown): void }, h: OverlayHost): Promise<string> {
  const dir = await tmp(t, 'ovdk');
  const p = h.plane!;
  const server = await startPluginServer({
    pluginDir: dir,
    drivers: { tsoverlay: new DockerOverlayNetwork({ driver: p.driver }) },
    ipam: { name: 'tsipam', backend: new DockerIpam({ ipam: new Ipam(p.store, { hostId: h.id }), hostId: h.id }) },
  });
  t.teardown(() => server.close());
  return dir;
}

async function ok(sock: string, path: string, body?: unknown): Promise<any> {
  const r = await callPlugin(sock, path, body);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.raw}`);
  return r.body;
}

/** What dockerd does for `docker run --net N` on host h: address, endpoint, join, move the interface in. */
async function dockerRun(w: World, h: OverlayHost, dir: string, poolId: string, networkId: string, endpointId: string) {
  const sock = join(dir, 'tsoverlay.sock');
  const { Address } = await ok(join(dir, 'tsipam.sock'), '/IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  const ep = await ok(sock, '/NetworkDriver.CreateEndpoint', { NetworkID: networkId, EndpointID: endpointId, Interface: { Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
  const ns = await w.set.add(endpointId.slice(0, 6));
  const res = await ok(sock, '/NetworkDriver.Join', { NetworkID: networkId, EndpointID: endpointId, SandboxKey: ns.path, Options: {} });
  // The engine's part: move SrcName into the sandbox, rename, address, up, default route.
  await h.ns.ip('link', 'set', res.InterfaceName.SrcName, 'netns', ns.name);
  await ns.ip('link', 'set', res.InterfaceName.SrcName, 'name', `${res.InterfaceName.DstPrefix}0`);
  await ns.ip('addr', 'add', Address, 'dev', 'eth0');
  await ns.ip('link', 'set', 'eth0', 'up');
  if (res.Gateway) await ns.ip('route', 'add', 'default', 'via', res.Gateway);
  const mac = (await w.k.ns(ns.path).link('eth0'))!.mac;
  return { ns, ip: Address.split('/')[0] as string, mac, offered: ep.Interface?.MacAddress as string | undefined };
}

test.serial('Docker: a global-scope tsoverlay network made on one engine carries containers of two', async (t) => {
  const w = await overlayWorld(t, cluster!, 2, 'ovd');
  const [a, b] = w.hosts as [OverlayHost, OverlayHost];
  for (const h of w.hosts) await w.startPlane(h);
  const da = await dockerPlugins(t, a);
  const db = await dockerPlugins(t, b);
  const caps = await ok(join(da, 'tsoverlay.sock'), '/NetworkDriver.GetCapabilities');
  t.deepEqual(caps, { Scope: 'global', ConnectivityScope: 'global' });

  // docker network create -d tsoverlay --ipam-driver tsipam --subnet 10.230.0.0/24 -o …vxlanid_list=5000 (on A only)
  const pool = await ok(join(da, 'tsipam.sock'), '/IpamDriver.RequestPool', { AddressSpace: 'global', Pool: '10.230.0.0/24', SubPool: '', Options: {}, V6: false });
  const gw = await ok(join(da, 'tsipam.sock'), '/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const netId = 'f'.repeat(64);
  const create = (opts: Record<string, string>) =>
    callPlugin(join(da, 'tsoverlay.sock'), '/NetworkDriver.CreateNetwork', {
      NetworkID: netId,
      Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': opts },
      IPv4Data: [{ AddressSpace: 'global', Pool: pool.Pool, Gateway: gw.Address }],
      IPv6Data: [],
    });
  const bad = await create({ 'com.docker.network.driver.overlay.vxlanid_list': '5000', flood: 'yes' });
  t.is(bad.status, 400);
  t.regex(bad.body.Err, /flood/);
  t.is((await create({ 'com.docker.network.driver.overlay.vxlanid_list': '5000' })).status, 200);
  t.like(await a.plane!.driver.network(netId), { vni: 5000, mtu: 1450, gateways: ['10.230.0.1'] });

  // docker run on A and on B (B's engine knows the network from the cluster store; no CreateNetwork there).
  const ra = await dockerRun(w, a, da, pool.PoolID, netId, 'a'.repeat(64));
  const rb = await dockerRun(w, b, db, pool.PoolID, netId, 'b'.repeat(64));
  t.not(ra.ip, rb.ip);
  t.is(ra.offered, `02:42:${ra.ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`);
  t.is(ra.mac, ra.offered, 'the container carries the MAC offered at CreateEndpoint');
  t.true(await pingUntil(ra.ns, rb.ip), 'container on A → container on B');
  t.true(await ping(rb.ns, ra.ip));
  t.true(await ping(rb.ns, '10.230.0.1'), 'the gateway answers on B too (distributed)');

  // -p is refused (a tsbridge network publishes ports); teardown as the engine does it.
  const pub = await callPlugin(join(db, 'tsoverlay.sock'), '/NetworkDriver.ProgramExternalConnectivity', {
    NetworkID: netId,
    EndpointID: 'b'.repeat(64),
    Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }] },
  });
  t.is(pub.status, 400);
  t.regex(pub.body.Err, /does not publish ports/);
  await ok(join(db, 'tsoverlay.sock'), '/NetworkDriver.Leave', { NetworkID: netId, EndpointID: 'b'.repeat(64) });
  await ok(join(db, 'tsoverlay.sock'), '/NetworkDriver.DeleteEndpoint', { NetworkID: netId, EndpointID: 'b'.repeat(64) });
  const vx = (await w.k.ns(a.ns.path).links()).find((l) => l.kind === 'vxlan')!.name;
  t.true(await until(async () => (await fdbMacs(w, a, vx)).length === 0, 3000), "B's container left A's VXLAN device");
  // network rm on A: no host has endpoints left, so the record (and its VNI) go.
  await ok(join(da, 'tsoverlay.sock'), '/NetworkDriver.Leave', { NetworkID: netId, EndpointID: 'a'.repeat(64) });
  await ok(join(da, 'tsoverlay.sock'), '/NetworkDriver.DeleteEndpoint', { NetworkID: netId, EndpointID: 'a'.repeat(64) });
  await ok(join(da, 'tsoverlay.sock'), '/NetworkDriver.DeleteNetwork', { NetworkID: netId });
  t.is(await a.plane!.driver.network(netId), undefined);
});

// ---- CNI ----

/** The daemon's hand-off route for tsoverlay on a unix socket, served from this process. */
async function daemonSocket(t: { teardown(fn: () => unknown): void }, w: World, h: OverlayHost): Promise<string> {
  const dir = await tmp(t, 'ovcni');
  const sock = join(dir, 'tsoverlay.sock');
  const p = h.plane!;
  const ctx = daemonCniContext({ hostId: h.id, store: p.store, storeUrl: p.storeUrl, kernel: w.k, firewall: h.firewall, warn: () => {} });
  const spec = tsoverlaySpec(ctx, { driver: p.driver, storeUrl: p.storeUrl });
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', async () => {
      if (req.url !== HANDOFF_PATH) return void res.writeHead(404).end('{}');
      const reply = await serveHandOff(JSON.parse(body), (name) => (name === 'tsoverlay' ? spec : undefined));
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return sock;
}

/** A CNI bin dir holding `tsoverlay` (the entry run through tsx). */
async function cniBin(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await tmp(t, 'ovbin');
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const file = join(dir, 'tsoverlay');
  await writeFile(file, `#!/bin/sh\nexec '${process.execPath}' --import='${loader}' '${join(ROOT, 'test/overlay/cni-entry.ts')}' "$@"\n`);
  await chmod(file, 0o755);
  return file;
}

test.serial('CNI: the tsoverlay executable hands off to the daemon on each host; ADD, CHECK, DEL', async (t) => {
  const w = await overlayWorld(t, cluster!, 2, 'ovc');
  const [a, b] = w.hosts as [OverlayHost, OverlayHost];
  for (const h of w.hosts) await w.startPlane(h);
  const exe = await cniBin(t);
  const conf = async (h: OverlayHost, extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'cblue',
    type: 'tsoverlay',
    store: h.plane!.storeUrl,
    daemonSocket: await daemonSocket(t, w, h),
    ipam: { type: 'tsipam', ranges: [[{ subnet: '10.231.0.0/24', gateway: '10.231.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
    ...extra,
  });
  const [confA, confB] = [await conf(a, { vni: 6000 }), await conf(b, { vni: 6000 })];
  const ctrA = await w.set.add('pa');
  const ctrB = await w.set.add('pb');
  const idA = 'a1'.repeat(32);
  const idB = 'b2'.repeat(32);
  const addA = await call(exe, 'ADD', confA, { containerId: idA, netns: ctrA.path, ifname: 'eth0' });
  t.is(addA.code, 0, addA.stdout + addA.stderr);
  const addB = await call(exe, 'ADD', confB, { containerId: idB, netns: ctrB.path, ifname: 'eth0' });
  t.is(addB.code, 0, addB.stdout + addB.stderr);
  t.is(addA.json.cniVersion, '1.0.0');
  t.like(addA.json.interfaces[2], { name: 'eth0', sandbox: ctrA.path, mtu: 1450 });
  t.deepEqual(addA.json.routes, [{ dst: '0.0.0.0/0', gw: '10.231.0.1' }]);
  const ipA = addA.json.ips[0].address.split('/')[0];
  const ipB = addB.json.ips[0].address.split('/')[0];
  t.not(ipA, ipB, 'tsipam gives each host its own address from the shared pool');
  t.true(await pingUntil(ctrA, ipB), 'A → B');
  t.true(await ping(ctrB, ipA), 'B → A');

  const check = await call(exe, 'CHECK', { ...confA, prevResult: addA.json }, { containerId: idA, netns: ctrA.path, ifname: 'eth0' });
  t.is(check.code, 0, check.stdout + check.stderr);
  const again = await call(exe, 'ADD', confA, { containerId: idA, netns: ctrA.path, ifname: 'eth0' });
  t.is(again.json?.code, 102, 'interface already there');
  const otherVni = await call(exe, 'ADD', { ...confB, vni: 6001 }, { containerId: 'c3'.repeat(32), netns: ctrB.path, ifname: 'eth1' });
  t.is(otherVni.json?.code, 7, `a config that disagrees with the network is refused: ${otherVni.stdout}`);

  const del = await call(exe, 'DEL', { ...confB, prevResult: addB.json }, { containerId: idB, netns: ctrB.path, ifname: 'eth0' });
  t.is(del.code, 0, del.stdout + del.stderr);
  t.is((await call(exe, 'DEL', confB, { containerId: idB, netns: ctrB.path, ifname: 'eth0' })).code, 0, 'DEL again is fine');
  const vx = (await w.k.ns(a.ns.path).links()).find((l) => l.kind === 'vxlan')!.name;
  t.true(await until(async () => (await fdbMacs(w, a, vx)).length === 0, 3000));
  t.false(await ping(ctrA, ipB));

  // Without a daemon, ADD is refused cleanly (the overlay's control plane lives in the daemon).
  const lonely = await call(exe, 'ADD', { ...confA, daemonSocket: join(tmpdir(), 'tsot-nothing-here.sock') }, { containerId: 'd4'.repeat(32), netns: ctrB.path, ifname: 'eth1' });
  t.is(lonely.json?.code, 11, lonely.stdout);
  t.regex(lonely.json?.msg ?? '', /needs the tsoverlay daemon/);
});
