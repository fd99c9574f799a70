// Benchmark of proxy/, both backends side by side in one run: full sync of 10,000 published
// ports + 1,000 services × 10 backends, one change at N = 100 / 1,000 / 10,000, the tool's own
// floor for one change, the same workload as separate `iptables` calls (a sample, extrapolated),
// and the process memory with 1,000 published ports. Each measurement runs in a child process
// placed INSIDE a fresh network namespace (as the daemon runs in its host's namespace: tools are
// spawned directly, listeners read from /proc), made and deleted here (tsob-…, outside the test
// runner's tsot-… sweep). Run: npx tsx bench/proxy.ts
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BACKEND_KINDS, totalStats, type BackendKind } from '../proxy/backend.js';
import { NetnsTools } from '../proxy/exec.js';
import { Firewall } from '../proxy/firewall.js';
import type { IptablesRules } from '../proxy/iptables-rules.js';

const GOAL_FULL_MS = 500;
const GOAL_CHANGE_MS = 15;
const GOAL_RSS_MB = 150;
const REPS = 15;

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

const ctr = (i: number) => `172.20.${(i >> 8) & 255}.${(i & 255) || 1}`;
const vip = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** What one child measures for one backend at one N. */
interface Result {
  size?: string;
  build?: number;
  full?: number;
  /** CPU time (user + system) of the tool processes of the full sync: what the machine's load does not inflate. */
  fullCpu?: number;
  noopCpu?: number;
  noop?: number;
  repair?: number;
  add: number;
  remove: number;
  service: number;
  floorAdd: number;
  floorDel: number;
  floorEmpty: number;
  rss?: number;
  heap?: number;
}

// ---- child side: runs inside its namespace, programs it as the daemon would (no nsenter) ----

/** Refuse to run anywhere but the namespace made for this child: everything below changes the firewall. */
function assertInNetns(name: string): void {
  if (!/^tsob-[0-9a-f]{6}-/.test(name) || statSync('/proc/self/ns/net').ino !== statSync(`/var/run/netns/${name}`).ino) {
    throw new Error(`bench child is not in network namespace ${name}: refusing`);
  }
}

/** CPU time of this process's finished children (iptables-restore, nft), in ms (/proc/self/stat cutime + cstime). */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/**
 * n published ports (random host ports) and n/10 services of 10 backends, added in one bulk sync.
 * `build` = the API calls (validation, allocation, rendering); `sync` = the kernel transaction(s).
 */
async function populate(fw: Firewall, n: number): Promise<{ build: number; sync: number; cpu: number }> {
  const t0 = process.hrtime.bigint();
  let build = 0;
  let cpu0 = 0;
  await fw.bulk(async () => {
    for (let i = 0; i < n; i++) {
      await fw.publish(`ep${i}`, { networkId: 'bench', containerIp: ctr(i + 2), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 0, hostPortEnd: 0 }] });
    }
    for (let s = 0; s < n / 10; s++) {
      const backends = Array.from({ length: 10 }, (_, k) => ctr(2 + ((s * 10 + k) % n)));
      await fw.setService({ name: `svc${s}`, vip: vip(s + 1), ports: [{ proto: 'tcp', port: 80 }], backends });
    }
    build = ms(t0);
    cpu0 = childCpuMs();
  });
  return { build, sync: ms(t0) - build, cpu: childCpuMs() - cpu0 };
}

async function oneChange(fw: Firewall, n: number): Promise<Pick<Result, 'add' | 'remove' | 'service'>> {
  const add: number[] = [];
  const remove: number[] = [];
  const service: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const id = `extra${r}`;
    let t0 = process.hrtime.bigint();
    await fw.publish(id, { networkId: 'bench', containerIp: ctr(60000 + r), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 0, hostPortEnd: 0 }] });
    add.push(ms(t0));
    t0 = process.hrtime.bigint();
    await fw.unpublish(id);
    remove.push(ms(t0));
    const backends = Array.from({ length: 10 }, (_, k) => ctr(2 + ((k + r + 1) % n)));
    t0 = process.hrtime.bigint();
    await fw.setService({ name: 'svc0', vip: vip(1), ports: [{ proto: 'tcp', port: 80 }], backends });
    service.push(ms(t0));
  }
  return { add: median(add), remove: median(remove), service: median(service) };
}

/**
 * What the tool and the kernel alone cost for one change here: iptables-restore of one DNAT into
 * a live bucket, or `nft -f` of one map element (a delete waits, in both, for the kernel to free
 * the old object after an RCU grace period); `empty` is a transaction with nothing in it.
 */
async function kernelFloor(fw: Firewall, tools: NetnsTools, kind: BackendKind): Promise<Pick<Result, 'floorAdd' | 'floorDel' | 'floorEmpty'>> {
  let ops: [string, string][];
  let tool: 'iptables-restore' | 'nft';
  if (kind === 'iptables') {
    const chains = (fw.backend as IptablesRules).backend(4).appliedChains();
    const bucket = [...chains.values()].find((c) => c.name.startsWith('TSO-DNAT-TCP-'))!.name;
    const rule = '-p tcp -m tcp --dport 9 -j DNAT --to-destination 172.20.0.9:80';
    tool = 'iptables-restore';
    ops = [['--noflush', '*nat\nCOMMIT\n'], ['--noflush', `*nat\n-A ${bucket} ${rule}\nCOMMIT\n`], ['--noflush', `*nat\n-D ${bucket} ${rule}\nCOMMIT\n`]];
  } else {
    tool = 'nft';
    ops = [['-f', 'add table inet tsoverlay\n'], ['-f', 'add element inet tsoverlay pub4any { tcp . 9 : 172.20.0.9 . 80 }\n'], ['-f', 'delete element inet tsoverlay pub4any { tcp . 9 }\n']];
  }
  const out = [[], [], []] as number[][];
  for (let i = 0; i < REPS; i++) {
    for (const [k, [flag, input]] of ops.entries()) {
      const t0 = process.hrtime.bigint();
      await tools.run(tool, flag === '-f' ? ['-f', '-'] : [flag], input);
      out[k]!.push(ms(t0));
    }
  }
  return { floorEmpty: median(out[0]!), floorAdd: median(out[1]!), floorDel: median(out[2]!) };
}

async function size(tools: NetnsTools, kind: BackendKind): Promise<string> {
  if (kind === 'iptables') return `${(await tools.run('iptables-save', [])).split('\n').filter((l) => l.startsWith('-A ')).length} rules`;
  const text = await tools.run('nft', ['list', 'table', 'inet', 'tsoverlay']);
  const rules = text.split('\n').filter((l) => /^\t\t[a-z@]/.test(l) && !/^\t\t(type|elements|flags|size|timeout) /.test(l)).length;
  return `${rules} rules + ${(text.match(/ : /g) ?? []).length} map elements`;
}

/** One measurement in this process's namespace; prints a JSON Result. */
async function child(netns: string, kind: BackendKind, n: number, mode: 'full' | 'change' | 'memory'): Promise<void> {
  assertInNetns(netns);
  sh(['ip', 'link', 'set', 'lo', 'up']);
  sh(['ip', 'link', 'add', 'tsbr0', 'type', 'bridge']);
  sh(['ip', 'addr', 'add', '172.20.0.1/16', 'dev', 'tsbr0']);
  const tools = new NetnsTools();
  const fw = new Firewall({ tools, backend: kind });
  await fw.init();
  await fw.setNetwork({ id: 'bench', bridge: 'tsbr0', subnets: ['172.20.0.0/16'] });
  const p = await populate(fw, n);
  const r = { build: p.build } as Result;
  if (mode === 'memory') {
    r.rss = process.memoryUsage().rss / 2 ** 20;
    r.heap = process.memoryUsage().heapUsed / 2 ** 20;
  } else {
    if (mode === 'full') {
      r.full = p.sync;
      r.fullCpu = p.cpu;
      r.size = await size(tools, kind);
      let t0 = process.hrtime.bigint();
      const cpu0 = childCpuMs();
      const stats = totalStats(await fw.reconcile());
      r.noop = ms(t0);
      r.noopCpu = childCpuMs() - cpu0;
      if (stats.lines !== 0) throw new Error(`${kind}: a reconcile right after the sync found ${stats.lines} lines to send`);
      // A firewalld-style reload: iptables' TSO-DNAT flushed, or our whole nft table deleted.
      if (kind === 'iptables') await tools.run('iptables', ['-t', 'nat', '-F', 'TSO-DNAT']);
      else await tools.run('nft', ['delete', 'table', 'inet', 'tsoverlay']);
      t0 = process.hrtime.bigint();
      await fw.reconcile();
      r.repair = ms(t0);
    }
    Object.assign(r, await oneChange(fw, n), await kernelFloor(fw, tools, kind));
  }
  process.stdout.write(JSON.stringify(r));
}

// ---- parent side: one fresh namespace per child, results side by side ----

function inFreshNetns(args: string[]): Result {
  const name = `tsob-${randomBytes(3).toString('hex')}-${args.join('-').slice(0, 12)}`;
  sh(['ip', 'netns', 'add', name]);
  try {
    const argv = ['--net=/var/run/netns/' + name, '--', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), '--child', name, ...args];
    const r = spawnSync('nsenter', argv, { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Result;
  } finally {
    spawnSync('ip', ['netns', 'delete', name]);
  }
}

/** Separate `iptables -t nat -A` calls, one process each, in a scratch namespace: per call, in ms. */
function separateCallMs(sample: number): number {
  const name = `tsob-${randomBytes(3).toString('hex')}-sep`;
  sh(['ip', 'netns', 'add', name]);
  try {
    const ipt = (...a: string[]) => sh(['nsenter', `--net=/var/run/netns/${name}`, '--', 'iptables', '-t', 'nat', ...a]);
    ipt('-N', 'TSO-BENCH-SEP');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < sample; i++) ipt('-A', 'TSO-BENCH-SEP', '-p', 'tcp', '-m', 'tcp', '--dport', String(1000 + i), '-j', 'DNAT', '--to-destination', `${ctr(i + 2)}:80`);
    return ms(t0) / sample;
  } finally {
    spawnSync('ip', ['netns', 'delete', name]);
  }
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
type Pair = Record<BackendKind, number>;
function row(label: string, v: Pair, goal?: number): string {
  const cells = BACKEND_KINDS.map((k) => `${fmt(v[k]).padStart(7)} ms`).join('  ');
  const vsGoal = goal ? `  goal ≤ ${goal} ms: ${BACKEND_KINDS.map((k) => `${k} ${(v[k] / goal).toFixed(2)}× ${v[k] <= goal ? 'met' : 'MISSED'}`).join(', ')}` : '';
  return `  ${label.padEnd(40)} ${cells}   nft/iptables ${(v.nft / v.iptables).toFixed(2)}${vsGoal}`;
}
const pick = (m: Record<BackendKind, Result>, key: keyof Result): Pair => ({ iptables: m.iptables[key] as number, nft: m.nft[key] as number });

/**
 * Each (backend, N) is measured by two children in the order iptables, nft, nft, iptables, and the
 * two results are averaged: load from other work on this shared machine then weighs on both alike.
 */
function measure(n: number, mode: 'full' | 'change'): Record<BackendKind, Result> {
  const got: Record<BackendKind, Result[]> = { iptables: [], nft: [] };
  for (const k of ['iptables', 'nft', 'nft', 'iptables'] as const) got[k].push(inFreshNetns([k, String(n), mode]));
  const mean = (rs: Result[]): Result => {
    const out = { ...rs[0]! };
    for (const key of Object.keys(out) as (keyof Result)[]) if (typeof out[key] === 'number') (out[key] as number) = rs.reduce((a, r) => a + (r[key] as number), 0) / rs.length;
    return out;
  };
  return { iptables: mean(got.iptables), nft: mean(got.nft) };
}

function main(): void {
  console.log(`proxy benchmark, both backends in one run (medians of ${REPS} per child, 2 children per backend in ABBA order, averaged); columns: ${BACKEND_KINDS.join(', ')}; load average ${readLoad()}`);
  const full = measure(10_000, 'full');
  for (const k of BACKEND_KINDS) console.log(`  ${k}: 10,000 ports + 1,000 services x 10 backends = ${full[k].size}; built through 11,000 API calls in ${fmt(full[k].build!)} ms`);
  console.log(row('full sync (one transaction), wall', pick(full, 'full'), GOAL_FULL_MS));
  console.log(row('full sync: CPU of the tool (±10 ms)', pick(full, 'fullCpu'), GOAL_FULL_MS));
  console.log(row('reconcile, nothing to do, wall', pick(full, 'noop')));
  console.log(row('reconcile, nothing to do: tool CPU', pick(full, 'noopCpu')));
  console.log(row('reconcile after a firewalld-style flush*', pick(full, 'repair')));
  console.log('  * iptables: TSO-DNAT flushed; nft: the whole table deleted');
  const perCall = separateCallMs(200) * 21_000;
  console.log(`  the same ~21,000 rules as separate iptables calls (200 sampled, extrapolated): ${(perCall / 1000).toFixed(1)} s = ${(perCall / full.iptables.full!).toFixed(0)}x iptables-restore, ${(perCall / full.nft.full!).toFixed(0)}x nft`);
  for (const n of [100, 1_000, 10_000]) {
    const c = n === 10_000 ? full : measure(n, 'change');
    console.log(`one change at N=${n} (N ports, N/10 services):`);
    console.log(row('publish one port', pick(c, 'add'), GOAL_CHANGE_MS));
    console.log(row('unpublish it', pick(c, 'remove'), GOAL_CHANGE_MS));
    console.log(row('service backend swap', pick(c, 'service'), GOAL_CHANGE_MS));
    console.log(row('tool alone: add one DNAT / map element', pick(c, 'floorAdd')));
    console.log(row('tool alone: delete it', pick(c, 'floorDel')));
    console.log(row('tool alone: empty transaction', pick(c, 'floorEmpty')));
  }
  for (const k of BACKEND_KINDS) {
    const m = inFreshNetns([k, '1000', 'memory']);
    console.log(`  ${k}: memory with 1,000 published ports (+100 services x 10 backends): rss ${m.rss!.toFixed(0)} MB, heap ${m.heap!.toFixed(0)} MB (goal < ${GOAL_RSS_MB} MB: ${m.rss! < GOAL_RSS_MB ? 'met' : 'MISSED'})`);
  }
  console.log(`load average at the end: ${readLoad()}`);
}

function readLoad(): string {
  return spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' ');
}

const at = process.argv.indexOf('--child');
if (at >= 0) {
  const [netns, kind, n, mode] = process.argv.slice(at + 1);
  await child(netns!, kind === 'nft' ? 'nft' : 'iptables', Number(n), mode as 'full' | 'change' | 'memory');
} else main();
