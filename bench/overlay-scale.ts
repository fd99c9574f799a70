// Control-plane scale (issue #7): one real `tsoverlay daemon` process, in a host namespace of its
// own, with a member on each of N overlay networks (made through its Docker plugin sockets as an
// engine would); a simulator writes H hosts × E endpoints straight into the 3-member etcd (no
// kernels behind them) and then churns 1 %/s. Measured from the outside only:
//  - convergence from a cold start: daemon started on a full store → every remote endpoint's
//    FDB entry and neighbour entry in the kernel (seen with `bridge monitor fdb` / `ip monitor neigh`);
//  - churn: write → both entries in the kernel, per new endpoint (p50/p95); old ones gone;
//  - etcd revisions/s during churn and while nothing changes (the daemon's own writes);
//  - the daemon's memory (VmRSS/VmHWM from /proc) and CPU while it follows the churn.
// The daemon reaches etcd (root namespace, loopback) through the fault tests' relay
// (test/faults/fixtures/etcd-relay.ts): inside the host namespace it is at the members' own URLs.
// TSOT_DAEMON_NODE_ARGS adds node flags to the daemon (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p", or
// "--max-old-space-size=160" to see the live heap under the RSS V8 grows into when memory is free).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kernel } from '../netlink/index.js';
import type { EndpointRecord } from '../plugins/drivers/common/records.js';
import { isRetryable } from '../store/errors.js';
import { keys } from '../store/keys.js';
import { openStore } from '../store/open.js';
import type { Op, Store } from '../store/types.js';
import { distIsFresh } from '../test/cni/harness.js';
import { memberPorts, startEtcdRelay } from '../test/faults/fixtures/etcd-relay.js';
import { startDaemon } from '../test/harness/daemon.js';
import type { EtcdCluster } from '../test/harness/etcd.js';
import { NetnsSet, type Netns } from '../test/harness/netns.js';
import { callPlugin } from '../test/libnetwork/plugin-client.js';
import { until } from '../test/overlay/world.js';
import { ms, pct, sleep } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ScaleOptions {
  hosts: number;
  perHost: number;
  networks: number;
  churnSeconds: number;
}

async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || i > 20) throw err;
      await sleep(100);
    }
  }
}

async function writeAll(s: Store, ops: Op[]): Promise<void> {
  for (let i = 0; i < ops.length; i += 128) {
    const chunk = ops.slice(i, i + 128);
    await retrying(() => s.txn([], chunk));
  }
}

async function procStatus(pid: number): Promise<{ rssMiB: number; hwmMiB: number; cpuTicks: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

async function ok(sock: string, path: string, body?: unknown): Promise<any> {
  const r = await callPlugin(sock, path, body);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.raw}`);
  return r.body;
}

/** What dockerd does for `docker network create -d tsoverlay --ipam-driver tsipam --subnet S` and one `docker run`. */
async function networkWithMember(set: NetnsSet, host: Netns, pluginDir: string, i: number): Promise<string> {
  const ipam = join(pluginDir, 'tsipam.sock');
  const drv = join(pluginDir, 'tsoverlay.sock');
  const pool = await ok(ipam, '/IpamDriver.RequestPool', { AddressSpace: 'global', Pool: `10.${64 + i}.0.0/16`, SubPool: '', Options: {}, V6: false });
  const gw = await ok(ipam, '/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const netId = createHash('sha256').update(`bench-net-${i}`).digest('hex');
  await ok(drv, '/NetworkDriver.CreateNetwork', {
    NetworkID: netId,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'global', Pool: pool.Pool, Gateway: gw.Address }],
    IPv6Data: [],
  });
  const { Address } = await ok(ipam, '/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '', Options: null });
  const epId = createHash('sha256').update(`bench-ep-${i}`).digest('hex');
  await ok(drv, '/NetworkDriver.CreateEndpoint', { NetworkID: netId, EndpointID: epId, Interface: { Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
  const ns = await set.add(`c${i}`);
  const res = await ok(drv, '/NetworkDriver.Join', { NetworkID: netId, EndpointID: epId, SandboxKey: ns.path, Options: {} });
  await host.ip('link', 'set', res.InterfaceName.SrcName, 'netns', ns.name);
  return netId;
}

// ---- what the kernel has ----

/**
 * Follows `bridge monitor fdb` and `ip monitor neigh` in the host namespace: when each remote MAC's
 * FDB entry (with a VTEP) and each IP's permanent neighbour entry arrived, and what is there now.
 */
class KernelWatch {
  readonly fdbAt = new Map<string, number>();
  readonly neighAt = new Map<string, number>();
  private readonly children: ChildProcess[] = [];

  static async start(ns: Netns): Promise<KernelWatch> {
    const w = new KernelWatch();
    w.follow(ns, 'bridge', ['monitor', 'fdb'], (line, at) => {
      const del = line.startsWith('Deleted ');
      const f = (del ? line.slice(8) : line).trim().split(/\s+/);
      if (!f.includes('dst')) return;
      if (del) w.fdbAt.delete(f[0]!);
      else if (!w.fdbAt.has(f[0]!)) w.fdbAt.set(f[0]!, at);
    });
    // -4: IPv4 neighbours only (bridge FDB changes are neighbour messages too, of family AF_BRIDGE).
    w.follow(ns, 'ip', ['-4', 'monitor', 'neigh'], (line, at) => {
      const del = line.startsWith('Deleted ');
      const f = (del ? line.slice(8) : line).trim().split(/\s+/);
      if (del) return void w.neighAt.delete(f[0]!);
      if (!line.includes('PERMANENT')) return;
      if (!w.neighAt.has(f[0]!)) w.neighAt.set(f[0]!, at);
    });
    await sleep(300);
    return w;
  }

  private follow(ns: Netns, cmd: string, args: string[], onLine: (line: string, at: number) => void): void {
    const child = spawn('nsenter', [`--net=${ns.path}`, '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.children.push(child);
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const at = performance.now();
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) onLine(l, at);
    });
  }

  /** When the last entry seen so far arrived. */
  lastAt(): number {
    let last = 0;
    for (const m of [this.fdbAt, this.neighAt]) for (const at of m.values()) last = Math.max(last, at);
    return last;
  }

  /** When both entries of (mac, ip) were in the kernel, or undefined. */
  programmedAt(mac: string, ip: string): number | undefined {
    const a = this.fdbAt.get(mac);
    const b = this.neighAt.get(ip);
    return a === undefined || b === undefined ? undefined : Math.max(a, b);
  }

  stop(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

/**
 * What the kernel holds now, from full dumps through the netlink layer (a monitor can lose events
 * when 60,000 arrive at once: its socket buffer overflows): remote MACs with a VTEP, IPv4
 * permanent neighbours.
 */
async function kernelDump(ns: Netns): Promise<{ macs: Set<string>; ips: Set<string> }> {
  const k = new Kernel({ timeoutMs: 60_000 }).ns(ns.path);
  const [fdb, neigh] = await Promise.all([k.fdb(), k.neighbours({ family: 4 })]);
  return { macs: new Set(fdb.filter((e) => e.dst).map((e) => e.mac)), ips: new Set(neigh.filter((n) => n.permanent).map((n) => n.dst)) };
}

// ---- the simulated cluster ----

const hostName = (h: number) => `sim-${h}`;
const macOf = (ip: string) => `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;

interface SimEndpoint {
  net: string;
  id: string;
  host: string;
  mac: string;
  ip: string;
}

/** Hosts and endpoints written straight into etcd, and their churn (network i's addresses from 10.(64+i).0.0/16). */
class Simulator {
  readonly live: SimEndpoint[] = [];
  private next = 0;
  private readonly perNet: number[];

  constructor(readonly store: Store, readonly nets: string[], readonly o: ScaleOptions) {
    this.perNet = nets.map(() => 10);
  }

  async seed(): Promise<void> {
    const hostOps: Op[] = Array.from({ length: this.o.hosts }, (_, h) => ({
      type: 'put',
      key: keys.host(hostName(h)),
      value: JSON.stringify({ id: hostName(h), advertise: `172.${16 + (((h + 1) >> 16) & 15)}.${((h + 1) >> 8) & 255}.${(h + 1) & 255}`, vxlanPort: 4789 }),
    }));
    await writeAll(this.store, hostOps);
    const epOps: Op[] = [];
    for (let h = 0; h < this.o.hosts; h++) for (let e = 0; e < this.o.perHost; e++) epOps.push(this.create(this.next % this.nets.length, hostName(h)));
    await writeAll(this.store, epOps);
  }

  create(netIndex: number, host: string): Op {
    const net = this.nets[netIndex]!;
    const k = this.perNet[netIndex]!++;
    const ip = `10.${64 + netIndex}.${(k >> 8) & 255}.${k & 255}`;
    const id = `sim-ep-${this.next++}`;
    const rec: EndpointRecord = { id, networkId: net, hostId: host, driver: 'overlay', names: [id], aliases: [], addresses: [`${ip}/16`], mac: macOf(ip), ports: [], exposed: [], createdAt: new Date().toISOString() };
    this.live.push({ net, id, host, mac: rec.mac!, ip });
    return { type: 'put', key: keys.endpoint(net, id), value: JSON.stringify(rec) };
  }

  /** Replace `n` random endpoints (delete one, create another on the same host and network). */
  replace(n: number): { ops: Op[]; added: SimEndpoint[]; removed: SimEndpoint[] } {
    const removed = Array.from({ length: n }, () => this.live.splice(Math.floor(Math.random() * this.live.length), 1)[0]!);
    const ops: Op[] = [];
    for (const v of removed) ops.push({ type: 'delete', key: keys.endpoint(v.net, v.id) }, this.create(this.nets.indexOf(v.net), v.host));
    return { ops, added: this.live.slice(-n), removed };
  }
}

export async function scale(cluster: EtcdCluster, o: ScaleOptions): Promise<void> {
  const set = new NetnsSet('bsc');
  const dir = await mkdtemp(join(tmpdir(), 'tsot-scale-'));
  const prefix = `/bench-scale-${Date.now()}`;
  const cleanups: Array<() => unknown> = [];
  const tick = 1000 / 100; // USER_HZ
  try {
    cleanups.push(() => set.cleanup());
    const host = await set.add('h');
    // An underlay interface for the advertise address (a veth whose peer stays in the namespace).
    await host.ip('link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1');
    await host.ip('addr', 'add', '172.31.255.1/24', 'dev', 'under0');
    for (const dev of ['under1', 'under0']) await host.ip('link', 'set', dev, 'up');
    const relay = await startEtcdRelay(host.path, memberPorts(cluster.endpoints), dir);
    cleanups.push(() => relay.stop());
    // Inside the namespace the relay answers at the members' own addresses.
    const storeUrl = `${cluster.url}${prefix}`;
    // Compiled when dist/ is fresh, so the memory figure has no tsx in it.
    const launch = () =>
      startDaemon({
        netnsPath: host.path,
        hostId: 'watcher',
        store: storeUrl,
        dir,
        compiled: distIsFresh() && existsSync(join(ROOT, 'dist', 'bin', 'tsoverlay.js')),
        nodeArgs: (process.env.TSOT_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean),
        extraArgs: ['--advertise', '172.31.255.1', '--docker-host', 'unix:///nonexistent/tsot-no-engine.sock', '--dns-upstream', '127.0.0.1:1', '--log-level', 'info'],
      });

    // 1. The daemon with a member on every network, nothing remote yet.
    const s0 = performance.now();
    let d = await launch();
    cleanups.push(() => d.stop());
    await d.waitForLog('daemon ready', 120_000);
    const startMs = performance.now() - s0;
    const nets: string[] = [];
    for (let i = 0; i < o.networks; i++) nets.push(await networkWithMember(set, host, d.pluginDir, i));
    const idle = await procStatus(d.child.pid!);
    await d.stop();

    // 2. The simulated cluster, written while the daemon is down.
    const sim = new Simulator(await openStore(`${cluster.url}${prefix}`), nets, o);
    cleanups.push(() => sim.store.close());
    const w0 = performance.now();
    await sim.seed();
    const total = sim.live.length;
    console.log(`scale (a real daemon process, compiled: ${distIsFresh()}): ${o.hosts} hosts × ${o.perHost} endpoints (${total}) over ${o.networks} networks written in ${ms(performance.now() - w0)}; the daemon has one member on each network`);

    // 3. Cold start on the full store → every FDB and neighbour entry in the kernel.
    const kw = await KernelWatch.start(host);
    cleanups.push(() => kw.stop());
    const c0 = performance.now();
    d = await launch();
    let readyAt = 0;
    const ready = d.waitForLog('daemon ready', 300_000).then(() => (readyAt = performance.now()));
    // Done when the monitors saw every entry (then: when the last one arrived), or, if they lost
    // events, when a dump, taken every 2 s while waiting, holds them all.
    let convergeMs = NaN;
    let dumpedAt = performance.now();
    let dumping = false;
    const converged = await until(() => {
      if (kw.fdbAt.size >= total && kw.neighAt.size >= total) return (convergeMs = kw.lastAt() - c0), true;
      if (!dumping && performance.now() - dumpedAt > 2000) {
        dumping = true;
        const at = performance.now();
        void kernelDump(host).then((k) => {
          dumping = false;
          dumpedAt = performance.now();
          if (k.macs.size >= total && k.ips.size >= total && Number.isNaN(convergeMs)) convergeMs = at - c0;
        }, () => (dumping = false));
      }
      return !Number.isNaN(convergeMs);
    }, 300_000);
    await ready;
    if (!converged) throw new Error(`not converged: ${kw.fdbAt.size} FDB / ${kw.neighAt.size} neighbour entries of ${total}`);
    const full = await procStatus(d.child.pid!);
    console.log(`  converge from a cold start: ${ms(convergeMs)} from spawn to ${total} FDB + ${total} neighbour entries in the kernel ("daemon ready" after ${ms(readyAt - c0)}; an empty daemon starts in ${ms(startMs)})`);
    console.log(`  daemon memory: RSS ${full.rssMiB.toFixed(1)} MiB (peak ${full.hwmMiB.toFixed(1)}) with ${total} remote endpoints; ${idle.rssMiB.toFixed(1)} MiB with none`);

    // 4. Nothing changing: what the daemon itself writes.
    const q0 = await sim.store.revision();
    await sleep(10_000);
    const quietRate = ((await sim.store.revision()) - q0) / 10;

    // 5. Churn at 1 %/s: every 200 ms replace 0.2 % in one txn.
    const perTick = Math.max(1, Math.min(64, Math.round(total / 500)));
    const sent = new Map<SimEndpoint, number>();
    const gone: SimEndpoint[] = [];
    const r0 = await sim.store.revision();
    const cpu0 = await procStatus(d.child.pid!);
    const t0 = performance.now();
    let chain: Promise<unknown> = Promise.resolve();
    let changes = 0;
    const rss: number[] = [];
    for (let n = 1; performance.now() - t0 < o.churnSeconds * 1000; n++) {
      if (n % 25 === 0) rss.push((await procStatus(d.child.pid!)).rssMiB);
      const { ops, added, removed } = sim.replace(perTick);
      gone.push(...removed);
      chain = chain
        .then(() => {
          const at = performance.now();
          for (const e of added) sent.set(e, at);
          return retrying(() => sim.store.txn([], ops));
        })
        .then(() => (changes += ops.length));
      await sleep(Math.max(0, t0 + n * 200 - performance.now()));
    }
    await chain;
    const seconds = (performance.now() - t0) / 1000;
    const r1 = await sim.store.revision();
    const cpu1 = await procStatus(d.child.pid!);
    // Endpoints the churn made and did not replace again (the others came and went).
    const alive = new Set(sim.live.map((e) => e.id));
    const made = [...sent].filter(([e]) => alive.has(e.id));
    await until(() => made.every(([e]) => kw.programmedAt(e.mac, e.ip) !== undefined), 10_000);
    const lags = made.map(([e, at]) => kw.programmedAt(e.mac, e.ip)! - at).filter((x) => Number.isFinite(x));
    // The verdicts from a dump (authoritative), the lags from the monitors.
    const k = await kernelDump(host);
    const allIn = made.every(([e]) => k.macs.has(e.mac) && k.ips.has(e.ip)) && k.macs.size === sim.live.length && k.ips.size === sim.live.length;
    const stale = !gone.some((e) => k.macs.has(e.mac) || k.ips.has(e.ip));
    const after = await procStatus(d.child.pid!);
    console.log(`  churn ${perTick * 5} endpoints/s replaced for ${seconds.toFixed(1)} s: etcd ${((r1 - r0) / seconds).toFixed(1)} revisions/s, ${(changes / seconds).toFixed(0)} key writes/s by the simulator; with nothing changing ${quietRate.toFixed(2)} revisions/s (the daemon's own writes)`);
    console.log(`  write → FDB and neighbour entry in the kernel p50 ${ms(pct(lags, 50))}  p95 ${ms(pct(lags, 95))}  max ${ms(Math.max(...lags))} over ${lags.length} of ${made.length} new endpoints; the kernel then holds exactly the ${sim.live.length} live endpoints: ${allIn}, none of the ${gone.length} replaced: ${stale}`);
    console.log(`  daemon while churning: CPU ${((((cpu1.cpuTicks - cpu0.cpuTicks) * tick) / (seconds * 1000)) * 100).toFixed(1)} % of one core; RSS ${after.rssMiB.toFixed(1)} MiB (peak ${after.hwmMiB.toFixed(1)})${rss.length ? `; every 5 s: ${rss.map((x) => x.toFixed(0)).join(' ')} MiB` : ''}`);
  } finally {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
