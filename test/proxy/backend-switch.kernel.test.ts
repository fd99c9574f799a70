// The firewall backend a daemon records for its host: standalone CNI executables (daemon down)
// program the same backend, and a daemon started with the other backend removes the first one's
// rules at start-up. Real daemons, plugins and TCP through the published port, in namespaces.
import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { FaultRuntime, type FaultConflist } from '../faults/fixtures/cni-runtime.js';
import { NFT_BIN, reach, startEchoServer } from './topo.js';

const HOST = '10.78.0.1';
const NB = '10.78.0.2';
const RELAY = '-A FORWARD -m mark --mark 0x2000/0x2000 -j ACCEPT';

interface World {
  dir: string;
  host: Netns;
  nb: Netns;
  ctr: Netns;
  rt: FaultRuntime;
  servers: ChildProcess[];
  daemon(backend: 'iptables' | 'nft'): Promise<DaemonHandle>;
  list(store: string, socket: string): FaultConflist;
}

async function world(t: ExecutionContext, tag: string, subnet: string): Promise<World> {
  const set = new NetnsSet(tag);
  const servers: ChildProcess[] = [];
  const daemons: DaemonHandle[] = [];
  const dir = mkdtempSync(join(tmpdir(), `tsot-${tag}-`));
  t.teardown(async () => {
    for (const d of daemons) await d.cleanup();
    for (const s of servers) if (s.exitCode === null && s.pid) process.kill(s.pid, 'SIGKILL');
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const host = await set.add('h');
  const nb = await set.add('n');
  const ctr = await set.add('c');
  await set.link(host, 'uh', `${HOST}/24`, nb, 'un', `${NB}/24`);
  // As dockerd leaves it: forwarding is dropped unless someone accepts it.
  await host.exec('iptables', ['-P', 'FORWARD', 'DROP']);
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  return {
    dir,
    host,
    nb,
    ctr,
    rt,
    servers,
    async daemon(backend) {
      const d = await startDaemon({ dir, netnsPath: host.path, hostId: tag, extraArgs: ['--reconcile-interval', '0', '--firewall-backend', backend] });
      daemons.push(d);
      await d.waitForLog('daemon ready', 120_000);
      return d;
    },
    list: (store, socket) => ({
      cniVersion: '1.0.0',
      name: tag,
      plugins: [
        { type: 'tsbridge', bridge: `ts${tag}0`, isGateway: true, ipMasq: true, store, daemonSocket: socket, ipam: { type: 'tsipam', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'tsportmap', capabilities: { portMappings: true }, store, daemonSocket: socket },
      ],
    }),
  };
}

/** What each backend holds for the container: its nft elements, its iptables DNATs, our chains. */
async function rulesOf(host: Netns, ip: string) {
  const ruleset = await host.exec(NFT_BIN, ['list', 'ruleset']);
  const ipt = await host.exec('iptables-save', []);
  return {
    nftTable: ruleset.includes('table inet tsoverlay'),
    nftHasIp: ruleset.includes(ip),
    iptChains: ipt.includes(':TSO-') || ipt.includes('-j TSO-'),
    iptHasIp: ipt.includes(ip),
    relay: ipt.split('\n').includes(RELAY),
  };
}

/** CHECK of every plugin of the list (libcni order), as a runtime runs it; '' when all pass. */
async function check(w: World, list: FaultConflist, a: { containerId: string; netns: string; ifname: string }, prev: unknown): Promise<string> {
  for (let i = 0; i < list.plugins.length; i++) {
    const r = await w.rt.invoke(list.plugins[i]!.type, 'CHECK', w.rt.pluginConf(list, i, a, prev), a);
    if (r.code !== 0) return `${list.plugins[i]!.type}: ${r.stdout}${r.stderr}`;
  }
  return '';
}

/** ADD of the whole list (must succeed), DEL of it at teardown; the container's IPv4 address. */
async function attach(t: ExecutionContext, w: World, list: FaultConflist, a: Parameters<World['rt']['add']>[1]) {
  const add = await w.rt.add(list, a);
  t.is(add.code, 0, add.stdout + add.stderr);
  t.teardown(async () => void (await w.rt.del(list, a, add.json)));
  return { add, ip: add.json.ips[0].address.split('/')[0] as string };
}

const recorded = (w: World) => readFileSync(join(w.dir, 'state', 'firewall-backend'), 'utf8').trim();

test('standalone tsbridge/tsportmap program the nft backend the daemon recorded; the restarted daemon keeps and then removes them', async (t) => {
  t.timeout(240_000);
  const w = await world(t, 'bswa', '10.73.0.0/24');
  let d = await w.daemon('nft');
  t.is(recorded(w), 'nft', 'the daemon records its backend beside the host id');
  await d.stop();
  const list = w.list(d.store, d.socket);
  const a = { containerId: 'bswa1', netns: w.ctr.path, ifname: 'eth0', runtimeConfig: { portMappings: [{ hostPort: 18081, containerPort: 80, protocol: 'tcp' }] } };
  const { add, ip } = await attach(t, w, list, a);
  let r = await rulesOf(w.host, ip);
  t.true(r.nftHasIp, 'the standalone DNAT is an element of our nft table');
  t.false(r.iptHasIp || r.iptChains, 'nothing of ours in iptables');
  t.true(r.relay, 'the FORWARD relay past the DROP policy');
  await startEchoServer(w.ctr, 'ctr', [80], [], w.servers);
  t.is(await reach(w.nb, 'tcp', HOST, 18081), `ctr ${NB}`, 'the published port answers with the daemon down');
  t.is(await check(w, list, a, add.json), '', 'standalone CHECK finds the rules in the nft table');

  d = await w.daemon('nft');
  t.is(await reach(w.nb, 'tcp', HOST, 18081), `ctr ${NB}`, 'and after the daemon is back');
  t.false(d.records().some((x) => /firewall backend switched/.test(String(x.msg))), 'same backend: no switch');
  t.is(await check(w, list, a, add.json), '', 'CHECK through the daemon too');
  await w.host.exec(NFT_BIN, ['delete', 'element', 'inet', 'tsoverlay', 'pub4any', '{', 'tcp', '.', '18081', '}']);
  t.regex(await check(w, list, a, add.json), /tsportmap: .*nft element .* is missing/, 'CHECK sees a deleted element');
  const del = await w.rt.del(list, a, add.json);
  t.is(del.code, 0, del.stdout + del.stderr);
  r = await rulesOf(w.host, ip);
  t.false(r.nftHasIp || r.iptHasIp || r.iptChains, 'DEL through the daemon leaves nothing in either backend');
});

test('a daemon restarted with the other backend removes the first one\'s rules; published ports keep working', async (t) => {
  t.timeout(240_000);
  const w = await world(t, 'bswb', '10.74.0.0/24');
  let d = await w.daemon('iptables');
  const list = w.list(d.store, d.socket);
  const a = { containerId: 'bswb1', netns: w.ctr.path, ifname: 'eth0', runtimeConfig: { portMappings: [{ hostPort: 18082, containerPort: 80, protocol: 'tcp' }] } };
  const { add, ip } = await attach(t, w, list, a);
  await startEchoServer(w.ctr, 'ctr', [80], [], w.servers);
  t.is(await reach(w.nb, 'tcp', HOST, 18082), `ctr ${NB}`, 'iptables: the port answers');
  t.like(await rulesOf(w.host, ip), { iptChains: true, iptHasIp: true, nftTable: false });

  for (const [from, to] of [['iptables', 'nft'], ['nft', 'iptables']] as const) {
    await d.stop();
    d = await w.daemon(to);
    const switched = d.records().filter((x) => /firewall backend switched/.test(String(x.msg)));
    t.is(switched.length, 1, `${from} -> ${to}: logged once`);
    t.like(switched[0], { from, to });
    t.is(recorded(w), to);
    const r = await rulesOf(w.host, ip);
    if (to === 'nft') t.like(r, { iptChains: false, iptHasIp: false, nftHasIp: true, relay: true }, 'no TSO-* chain or jump left in iptables');
    else t.like(r, { nftTable: false, relay: false, iptChains: true, iptHasIp: true }, 'no nft table or relay rule left');
    const ip6 = await w.host.exec('ip6tables-save', []);
    if (to === 'nft') t.false(ip6.includes('TSO-'), 'nor in ip6tables');
    else t.false(ip6.split('\n').includes(RELAY), 'nor the IPv6 relay');
    t.is(await reach(w.nb, 'tcp', HOST, 18082), `ctr ${NB}`, `${to}: the port still answers`);
  }
  const del = await w.rt.del(list, a, add.json);
  t.is(del.code, 0, del.stdout + del.stderr);
});
