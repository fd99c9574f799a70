// Kernel state changed behind the daemon's back, beyond test/daemon/reconcile.test.ts (bridge,
// chain, ip_forward): (1) a joined CNI endpoint's host veth deleted — the container lost its
// link with it; the right outcome is that nothing pretends otherwise (the reconciler reports the
// endpoint broken, CHECK fails), the neighbours are unaffected, the record and port state stay
// consistent, and the runtime's DEL cleans everything (a new ADD works); (2) the FDB and
// neighbour entries of a remote container removed from an overlay's VXLAN device: the
// periodic pass programs them again and the containers talk again.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { startEtcdSingle } from '../harness/etcd.js';
import { makeHosts } from '../harness/hosts.js';
import { NetnsSet } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { auditHost, pings } from './fixtures/audit.js';
import { addTsoverlay, FaultRuntime, type FaultConflist, type Invocation } from './fixtures/cni-runtime.js';
import { memberPorts, startEtcdRelay } from './fixtures/etcd-relay.js';
import { eventually, figures } from './fixtures/scenario.js';

const PERIOD_S = 1;

test('a joined endpoint whose host veth is deleted: reported broken, CHECK fails, neighbours fine, DEL cleans up', async (t) => {
  t.timeout(180_000);
  const set = new NetnsSet('fzvd');
  t.teardown(() => set.cleanup());
  const host = await set.add('h');
  const [c1, c2] = [await set.add('c1'), await set.add('c2')];
  const d = await startDaemon({ netnsPath: host.path, extraArgs: ['--reconcile-interval', String(PERIOD_S)] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready', 120_000);
  const list: FaultConflist = {
    cniVersion: '1.0.0',
    name: 'fzvd',
    plugins: [
      { type: 'tsbridge', bridge: 'tsfzvd0', isGateway: true, ipMasq: true, store: d.store, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.76.0.0/24' }]] } },
      { type: 'tsportmap', capabilities: { portMappings: true }, store: d.store, daemonSocket: d.socket },
    ],
  };
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  const a1 = { containerId: 'fzvdc1', netns: c1.path, ifname: 'eth0', runtimeConfig: { portMappings: [{ hostPort: 18181, containerPort: 80, protocol: 'tcp' }] } };
  const a2 = { containerId: 'fzvdc2', netns: c2.path, ifname: 'eth0' };
  const [r1, r2] = [await rt.add(list, a1), await rt.add(list, a2)];
  t.is(r1.code, 0, r1.stdout);
  t.is(r2.code, 0, r2.stdout);
  const ip1 = r1.json.ips[0].address.split('/')[0];
  const veth1 = r1.json.interfaces[1].name as string;

  const deletedAt = Date.now();
  await host.ip('link', 'del', veth1);
  t.notRegex(await c1.ip('-o', 'link', 'show'), /eth0/, 'the container end went with it');
  const reportedMs = await eventually('the reconciler reports the endpoint broken', () => d.logs.some((l) => l.includes('joined endpoint has no host interface') && l.includes('fzvdc1')), PERIOD_S * 1000 + 10_000);
  t.true(await pings(c2.path, '10.76.0.1'), 'the neighbour still reaches the gateway');
  const check = await rt.invoke('tsbridge', 'CHECK', { ...rt.pluginConf(list, 0, a1, r1.json) }, a1);
  t.not(check.code, 0, `CHECK reports the missing interface: ${check.stdout}`);
  // Record and port state stay as the ADD left them (the runtime decides), and stay consistent.
  const mid = await auditHost({ hostNetns: host.path, store: d.store, containerIds: /fzvdc\d/, addressPrefix: '10.76.0.', notContainers: ['10.76.0.1'] });
  t.true(mid.storeMentions.has('fzvdc1'));
  t.true(mid.ruleAddresses.has(ip1), 'its port rule is still desired');
  t.false(mid.veths.includes(veth1), 'the reconciler does not invent a veth for a container it cannot reach');

  const del = await rt.del(list, a1, r1.json);
  t.is(del.code, 0, del.stdout + del.stderr);
  const after = await auditHost({ hostNetns: host.path, store: d.store, containerIds: /fzvdc\d/, addressPrefix: '10.76.0.', notContainers: ['10.76.0.1'] });
  t.deepEqual([...after.storeMentions], ['fzvdc2'], 'only the neighbour is recorded');
  t.false(after.ruleAddresses.has(ip1), 'its port rule is gone');
  // The runtime re-creates the container's network: same ID, a fresh link, reachable.
  const again = await rt.add(list, a1);
  t.is(again.code, 0, again.stdout);
  t.true(await pings(c1.path, '10.76.0.1'));
  const cleanup = [await rt.del(list, a1, again.json), await rt.del(list, a2, r2.json)];
  t.deepEqual(cleanup.map((c) => c.code), [0, 0]);
  figures(t, 'veth-deleted', { periodS: PERIOD_S, reportedAfterMs: reportedMs, sinceDeleteMs: Date.now() - deletedAt });
});

test('overlay: the FDB and neighbour entries of a remote container, removed by hand, are programmed again', async (t) => {
  t.timeout(240_000);
  const etcd = await startEtcdSingle();
  t.teardown(() => etcd.stop());
  const set = new NetnsSet('fzfd');
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fzfd-'));
  t.teardown(async () => {
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const hosts = await makeHosts(set, 2, { prefix: '10.98.7' });
  const bin = await pluginDir(t);
  await addTsoverlay(bin);
  const daemons: DaemonHandle[] = [];
  t.teardown(() => Promise.all(daemons.map((d) => d.cleanup())));
  for (const [i, h] of hosts.entries()) {
    const hdir = join(dir, `h${i}`);
    rmSync(hdir, { recursive: true, force: true });
    const relayDir = mkdtempSync(join(dir, `relay${i}-`));
    const relay = await startEtcdRelay(h.ns.path, memberPorts(etcd.endpoints), relayDir);
    t.teardown(() => relay.stop());
    daemons.push(await startDaemon({ dir: hdir, netnsPath: h.ns.path, hostId: `fzfd${i}`, store: etcd.url, extraArgs: ['--reconcile-interval', String(PERIOD_S)] }));
  }
  for (const d of daemons) await d.waitForLog('daemon ready', 120_000);
  const ctrs = [await set.add('ca'), await set.add('cb')];
  const lists = daemons.map((d): FaultConflist => ({
    cniVersion: '1.0.0',
    name: 'fzfd',
    plugins: [{ type: 'tsoverlay', vni: 7300, store: etcd.url, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.77.0.0/24', gateway: '10.77.0.1' }]] } }],
  }));
  const rts = hosts.map((h) => new FaultRuntime(bin, h.ns.path));
  const atts = ctrs.map((c, i) => ({ containerId: `fzfd${i}`, netns: c.path, ifname: 'eth0' }));
  const adds: Invocation[] = [];
  for (const i of [0, 1]) {
    const r = await rts[i]!.add(lists[i]!, atts[i]!);
    t.is(r.code, 0, r.stdout + r.stderr);
    adds.push(r);
  }
  t.teardown(async () => {
    for (const i of [0, 1]) await rts[i]!.del(lists[i]!, atts[i]!, adds[i]?.json);
  });
  const ipB = adds[1]!.json.ips[0].address.split('/')[0] as string;
  const macB = adds[1]!.json.interfaces.find((x: { sandbox?: string }) => x.sandbox)?.mac as string;
  t.true(await eventually('A reaches B over the overlay', () => pings(ctrs[0]!.path, ipB), 20_000, 300).then(() => true));

  const a = hosts[0]!.ns;
  const vx = (await a.ip('-o', 'link', 'show', 'type', 'vxlan')).split(':')[1]!.trim().split('@')[0]!;
  const removedAt = Date.now();
  const fdbLines = (await a.exec('bridge', ['fdb', 'show', 'dev', vx])).split('\n').filter((l) => l.startsWith(macB));
  for (const line of fdbLines) {
    // "MAC master BRIDGE static" (the bridge's entry) and "MAC dst VTEP self permanent" (the
    // VXLAN device's): delete each by what names it.
    const dst = /\bdst (\S+)/.exec(line)?.[1];
    const which = dst ? ['dst', dst, 'self'] : line.includes(' master ') ? ['master'] : [];
    await a.exec('bridge', ['fdb', 'del', macB, 'dev', vx, ...which]);
  }
  await a.ip('neigh', 'del', ipB, 'dev', vx).catch(() => undefined);
  t.true(fdbLines.length > 0, 'B was programmed on A');
  t.false((await a.exec('bridge', ['fdb', 'show', 'dev', vx])).includes(macB), `the entry is gone (was: ${fdbLines.join(' | ')})`);
  const repairedMs = await eventually('the FDB entry is back', async () => (await a.exec('bridge', ['fdb', 'show', 'dev', vx])).includes(macB), PERIOD_S * 1000 + 10_000);
  await eventually('the neighbour entry is back', async () => (await a.ip('neigh', 'show', 'dev', vx)).includes(ipB), 10_000);
  t.true(await eventually('A reaches B again', () => pings(ctrs[0]!.path, ipB), 10_000, 300).then(() => true));
  figures(t, 'fdb-removed', { periodS: PERIOD_S, repairedMs, pingBackMs: Date.now() - removedAt });
});
