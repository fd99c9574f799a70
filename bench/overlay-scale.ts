// Control-plane scale (issue #7): one real `tsoverlay daemon` process, in a host namespace of its
// own, with a member on each of N overlay networks (made through its Docker plugin sockets as an
// engine would); a simulator writes H hosts × E endpoints straight into the 3-member etcd (no
// kernels behind them) and then churns 1 %/s. Measured from the outside only:
//  - convergence from a cold start: daemon started on a full store → every remote endpoint's
//    FDB entry and neighbour entry in the kernel (seen with `bridge monitor fdb` / `ip monitor neigh`);
//  - churn: write → both entries in the kernel, per new endpoint (p50/p95); old ones gone;
//  - etcd revisions/s during churn and while nothing changes (the daemon's own writes);
//  - the daemon's memory (VmRSS/VmHWM from /proc) and CPU while it follows the churn.
// The daemon reaches etcd (root namespace, loopback) through a relay: a unix socket per member in
// this process, and a TCP listener on the same port inside the host namespace (a child node process).
// TSOT_DAEMON_NODE_ARGS adds node flags to the daemon (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p", or
// "--max-old-space-size=160" to see the live heap under the RSS V8 grows into when memory is free).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EndpointRecord } from '../plugins/drivers/common/records.js';
import { isRetryable } from '../store/errors.js';
import { keys } from '../store/keys.js';
import { openStore } from '../store/open.js';
import type { Op, Store } from '../store/types.js';
import { distIsFresh } from '../test/cni/harness.js';
import type { EtcdCluster } from '../test/harness/etcd.js';
import { run } from '../test/harness/exec.js';
import { NetnsSet, type Netns } from '../test/harness/netns.js';
import { callPlugin } from '../test/libnetwork/plugin-client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ScaleOptions {
  hosts: number;
  perHost: number;
  networks: number;
  churnSeconds: number;
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

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

// ---- the relay into the namespace ----

/** Listens on 127.0.0.1:<port> inside the namespace and pipes each connection to a unix socket. */
const NS_RELAY = `
const net = require('node:net');
const [dir, ...ports] = process.argv.slice(1);
let up = 0;
for (const [i, port] of ports.entries()) {
  net.createServer((c) => {
    const u = net.connect(dir + '/etcd-' + i + '.sock');
    for (const s of [c, u]) s.on('error', () => { c.destroy(); u.destroy(); });
    c.pipe(u); u.pipe(c);
  }).listen(Number(port), '127.0.0.1', () => { if (++up === ports.length) console.log('ready'); });
}`;

interface Relay {
  /** The daemon's --store inside the namespace. */
  url: string;
  close(): Promise<void>;
}

async function startRelay(cluster: EtcdCluster, ns: Netns, dir: string): Promise<Relay> {
  const ports = cluster.endpoints.map((e) => Number(new URL(e).port));
  const servers: Server[] = [];
  for (const [i, port] of ports.entries()) {
    const srv = createServer((c) => {
      const u = connect(port, '127.0.0.1');
      for (const s of [c, u]) s.on('error', () => (c.destroy(), u.destroy()));
      c.pipe(u);
      u.pipe(c);
    });
    await new Promise<void>((res) => srv.listen(join(dir, `etcd-${i}.sock`), () => res()));
    servers.push(srv);
  }
  const child = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', NS_RELAY, dir, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    child.stdout!.once('data', () => res());
    child.once('exit', (code) => rej(new Error(`relay exited ${code}`)));
  });
  return {
    url: `etcd://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    async close() {
      child.kill('SIGKILL');
      for (const s of servers) s.close();
    },
  };
}

// ---- the daemon ----

interface Daemon {
  child: ChildProcess;
  pluginDir: string;
  /** Resolves once the daemon logged "daemon ready". */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** `tsoverlay daemon` in `ns` (compiled when dist/ is fresh, so the memory figure has no tsx in it). */
function startDaemon(ns: Netns, dir: string, store: string, advertise: string): Daemon {
  const compiled = join(ROOT, 'dist', 'bin', 'tsoverlay.js');
  const entry = distIsFresh() && existsSync(compiled) ? [compiled] : ['--import=tsx', join(ROOT, 'bin', 'tsoverlay.ts')];
  const pluginDir = join(dir, 'plugins');
  const args = [
    'daemon', '--state-dir', join(dir, 'state'), '--store', store, '--plugin-dir', pluginDir, '--socket', join(dir, 'tsoverlay.sock'),
    '--host-id', 'watcher', '--advertise', advertise, '--docker-host', 'unix:///nonexistent/tsot-no-engine.sock',
    '--dns-upstream', '127.0.0.1:1', '--log-level', 'info',
  ];
  const child = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, ...(process.env.TSOT_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean), ...entry, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('"daemon ready"')) res();
      if (out.length > 1_000_000) out = out.slice(-10_000);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => process.stderr.write(d));
    child.once('exit', (code) => rej(new Error(`daemon exited ${code}: ${out.slice(-2000)}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    pluginDir,
    ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    },
  };
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
 * What the kernel holds now, from full dumps (a monitor can lose events when 60,000 arrive at
 * once: its socket buffer overflows): remote MACs with a VTEP, IPv4 permanent neighbours.
 */
async function kernelDump(ns: Netns): Promise<{ macs: Set<string>; ips: Set<string> }> {
  const [fdb, neigh] = await Promise.all([
    run('bridge', ['-n', ns.name, 'fdb', 'show'], { timeoutMs: 60_000 }),
    run('ip', ['-n', ns.name, '-4', 'neigh', 'show', 'nud', 'permanent'], { timeoutMs: 60_000 }),
  ]);
  const macs = new Set(fdb.split('\n').filter((l) => l.includes(' dst ')).map((l) => l.split(' ')[0]!));
  const ips = new Set(neigh.split('\n').filter(Boolean).map((l) => l.split(' ')[0]!));
  return { macs, ips };
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

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
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
    const relay = await startRelay(cluster, host, dir);
    cleanups.push(() => relay.close());
    const storeUrl = `${relay.url}${prefix}`;

    // 1. The daemon with a member on every network, nothing remote yet.
    let d = startDaemon(host, dir, storeUrl, '172.31.255.1');
    cleanups.push(() => d.stop());
    const s0 = performance.now();
    await d.ready;
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
    d = startDaemon(host, dir, storeUrl, '172.31.255.1');
    let readyAt = 0;
    void d.ready.then(() => (readyAt = performance.now()));
    // Done when the monitors saw every entry, or (if they lost events) when a dump, taken every
    // 2 s while waiting, holds them all.
    let convergeMs = NaN;
    let dumpedAt = performance.now();
    let dumping = false;
    const converged = await until(() => {
      if (kw.fdbAt.size >= total && kw.neighAt.size >= total) return (convergeMs = performance.now() - c0), true;
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
    await d.ready;
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
