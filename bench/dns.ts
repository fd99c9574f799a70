// DNS benchmark: tsoverlay's standalone DNS vs dnsmasq (Debian dnsmasq-base), same machine, same
// 10k names (our store's endpoint records / dnsmasq's --addn-hosts file), measured with dnsperf:
// qps for local names and for names forwarded to a third server (another dnsmasq, no cache in
// either forwarder), latency percentiles at a fixed rate, and CPU time per query (server process
// tree, from /proc). Everything runs inside one network namespace the bench makes (loopback only).
// The machine is shared and noisy: after a warm-up, many short rounds rotate the order of the
// servers (neighbouring runs see similar load) and the medians are reported, with the median of
// the per-round ratios. CPU per query is the steadiest figure. A bare Node responder (same dgram
// calls, no DNS work) shows the floor of Node's UDP path (--no-bare to skip it). Our server runs
// on both UDP paths side by side: the batched native addon (dns/native/, must be built) and dgram.
// Run: npx tsx bench/dns.ts [--names 10000] [--seconds 2] [--rounds 9] [--rate 10000] [--workers 1,2] [--paths native,dgram] [--no-bare]
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStandalone, type StandaloneOptions } from '../dns/standalone.js';
import { keys } from '../store/keys.js';
import { SqliteStore } from '../store/sqlite.js';
import { NetnsSet, type Netns } from '../test/harness/netns.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const NAMES = Number(arg('names', '10000'));
const SECONDS = Number(arg('seconds', '2'));
const ROUNDS = Number(arg('rounds', arg('pairs', '9')));
const RATE = Number(arg('rate', '10000'));
const WORKERS = arg('workers', '1,2').split(',').map(Number);
const PATHS = arg('paths', 'native,dgram').split(',') as ('native' | 'dgram')[];
const DNSMASQ = '127.0.0.2';
const UPSTREAM = '127.0.0.3';
const ours = (path: string, w: number) => `127.0.${path === 'dgram' ? 3 : 1}.${w}`;
const BARE = '127.0.2.1';
/** Also measure a bare Node responder (local qps only): the floor of Node's UDP path. */
const WITH_BARE = !process.argv.includes('--no-bare');

const addr = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${(i & 255) || 1}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Perf {
  qps: number;
  lost: number;
  /** CPU µs (user + system) the server spent per query completed. */
  cpuUs: number;
}
interface Latency {
  p50: number;
  p99: number;
  max: number;
}
type Row = { local: Perf; fwd?: Perf; lat?: Latency };

/** A server under test: where it listens and its process (CPU is read from /proc). */
interface Target {
  name: string;
  host: string;
  proc: ChildProcess;
  /** Local names only (the bare responder answers everything alike). */
  localOnly?: boolean;
}

function startIn(ns: Netns, cmd: string, args: string[]): ChildProcess {
  // nsenter execs the command in place: the PID is the server's own.
  const p = spawn('nsenter', [`--net=${ns.path}`, '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.on('data', () => {});
  p.stderr!.on('data', () => {});
  return p;
}

/** utime + stime (clock ticks) of a process and its children (cluster workers). */
function cpuTicks(pid: number): number {
  const one = (p: string) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return Number(rest[11]) + Number(rest[12]);
    } catch {
      return 0;
    }
  };
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    /* gone */
  }
  return one(String(pid)) + children.reduce((n, c) => n + one(c), 0);
}

async function dnsperf(ns: Netns, server: string, file: string, extra: string[]): Promise<string> {
  const r = await ns.tryExec('dnsperf', ['-s', server, '-p', '53', '-d', file, '-t', '2', ...extra], { timeoutMs: (SECONDS + 30) * 1000 });
  return r.stdout;
}

async function throughput(ns: Netns, t: Target, file: string, seconds = SECONDS): Promise<Perf> {
  const c0 = cpuTicks(t.proc.pid!);
  const out = await dnsperf(ns, t.host, file, ['-l', String(seconds)]);
  const ticks = cpuTicks(t.proc.pid!) - c0;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const done = num(/Queries completed:\s+(\d+)/);
  return { qps: num(/Queries per second:\s+([\d.]+)/), lost: num(/Queries lost:\s+(\d+)/), cpuUs: (ticks * 10_000) / done };
}

/** Latency percentiles at a fixed rate, from dnsperf's per-query lines (-v). */
async function latency(ns: Netns, t: Target, file: string): Promise<Latency> {
  const out = await dnsperf(ns, t.host, file, ['-l', String(SECONDS), '-Q', String(RATE), '-v']);
  const xs = [...out.matchAll(/^> \w+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  const pct = (p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  return { p50: pct(50), p99: pct(99), max: xs.at(-1) ?? NaN };
}

async function waitAnswer(ns: Netns, server: string, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const r = await ns.tryExec('dig', ['+time=1', '+tries=1', '+short', `@${server}`, name]);
    if (r.stdout.trim()) return;
    await sleep(100);
  }
  throw new Error(`${server} never answered ${name}`);
}

/** `--serve JSON`: this file runs our server in its own process. */
async function serve(json: string): Promise<void> {
  const h = await serveStandalone(JSON.parse(json) as StandaloneOptions);
  process.on('SIGTERM', () => void h.stop().then(() => process.exit(0)));
}

/**
 * `--bare HOST`: the floor of Node's UDP path, for reference: every query gets the same A record
 * appended to its own bytes (no parsing, no lookup, no cache), sent with the same dgram calls.
 */
function serveBare(host: string): void {
  const sock = dgram.createSocket({ type: 'udp4', lookup: (h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, h, 4) } as dgram.SocketOptions);
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]);
  sock.on('message', (m, r) => {
    if (m.length < 12 || m[11] !== 0) return;
    const out = Buffer.allocUnsafe(m.length + answer.length);
    out.set(m);
    out.set(answer, m.length);
    out[2] = 0x85;
    out[3] = 0x80;
    out[7] = 1;
    sock.send(out, r.port, r.address);
  });
  sock.bind(53, host);
  process.on('SIGTERM', () => process.exit(0));
}

async function fill(file: string): Promise<void> {
  const s = SqliteStore.open(file);
  await s.put(keys.network('bench'), JSON.stringify({ id: 'bench', name: 'bench', subnets: ['10.100.0.0/14'] }));
  for (let i = 0; i < NAMES; i += 100) {
    const ops = [];
    for (let j = i; j < Math.min(NAMES, i + 100); j++) {
      ops.push({ type: 'put' as const, key: keys.endpoint('bench', `e${j}`), value: JSON.stringify({ id: `e${j}`, networkId: 'bench', name: `host${j}`, addresses: [addr(j)] }) });
    }
    await s.txn([], ops);
  }
  await s.close();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-bench-dns-'));
  const set = new NetnsSet('bdns');
  const procs: ChildProcess[] = [];
  const cleanup = async () => {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(300);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const ns = await set.add('ns');
    const names = Array.from({ length: NAMES }, (_, i) => i);
    writeFileSync(join(dir, 'hosts'), names.map((i) => `${addr(i)} host${i}`).join('\n') + '\n');
    writeFileSync(join(dir, 'upstream-hosts'), names.map((i) => `${addr(i)} f${i}.example.test`).join('\n') + '\n');
    const files = { local: join(dir, 'q-local'), fwd: join(dir, 'q-fwd') };
    writeFileSync(files.local, names.map((i) => `host${i} A`).join('\n') + '\n');
    writeFileSync(files.fwd, names.map((i) => `f${i}.example.test A`).join('\n') + '\n');
    await fill(join(dir, 'store.db'));
    const masq = (listen: string, hosts: string, extra: string[]) =>
      startIn(ns, 'dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--bind-interfaces', `--listen-address=${listen}`, '--port=53', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--user=root', ...extra]);
    procs.push(masq(UPSTREAM, join(dir, 'upstream-hosts'), []));
    // No answer cache on either side for forwarded names: every query goes upstream.
    const targets: Target[] = [{ name: 'dnsmasq', host: DNSMASQ, proc: masq(DNSMASQ, join(dir, 'hosts'), [`--server=${UPSTREAM}`, '--cache-size=0']) }];
    procs.push(targets[0]!.proc);
    for (const path of PATHS) {
      for (const w of WORKERS) {
        const opts: StandaloneOptions = { storeUrl: `sqlite://${join(dir, 'store.db')}`, listen: [`${ours(path, w)}:53`], upstreams: [UPSTREAM], workers: w, udp: path };
        const proc = startIn(ns, process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve', JSON.stringify(opts)]);
        procs.push(proc);
        targets.push({ name: `${path}×${w}`, host: ours(path, w), proc });
      }
    }
    if (WITH_BARE) {
      const proc = startIn(ns, process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--bare', BARE]);
      procs.push(proc);
      targets.push({ name: 'bare Node', host: BARE, proc, localOnly: true });
    }
    await waitAnswer(ns, UPSTREAM, 'f1.example.test');
    for (const t of targets) await waitAnswer(ns, t.host, 'host1');
    // Warm-up: every name once (fills our answer cache), then a short load (JIT, socket buffers).
    for (const t of targets) {
      await dnsperf(ns, t.host, files.local, ['-n', '1']);
      await throughput(ns, t, files.local, 1);
      if (!t.localOnly) await throughput(ns, t, files.fwd, 1);
    }
    const rounds: Map<string, Row>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate which server goes first, so a drift in machine load favours none.
      const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
      const round = new Map<string, Row>(targets.map((t) => [t.name, {} as Row]));
      for (const kind of ['local', 'fwd'] as const) {
        for (const t of order) if (kind === 'local' || !t.localOnly) round.get(t.name)![kind] = await throughput(ns, t, files[kind]);
      }
      for (const t of order) if (!t.localOnly) round.get(t.name)!.lat = await latency(ns, t, files.local);
      rounds.push(round);
      process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
    }
    report(targets, rounds);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function report(targets: Target[], rounds: Map<string, Row>[]): void {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const col = (name: string, pick: (x: Row) => number | undefined) => rounds.map((r) => pick(r.get(name)!) ?? NaN);
  const ratios = (name: string, k: 'local' | 'fwd') => rounds.map((r) => (r.get(name)![k]?.qps ?? NaN) / r.get('dnsmasq')![k]!.qps);
  console.log(
    `\nDNS benchmark: ${NAMES} names, ${ROUNDS} rounds of dnsperf runs (${SECONDS} s each, server order rotating), latency at ${RATE} qps over ${SECONDS} s; one network namespace, loopback`,
  );
  console.log('server         local qps (median; rounds)               µs CPU/q  fwd qps (median; rounds)           µs CPU/q  local latency ms p50 / p99 / max (medians)');
  for (const { name, localOnly } of targets) {
    const l = col(name, (x) => x.local.qps);
    const w = col(name, (x) => x.fwd?.qps);
    const lat = (k: keyof Latency) => median(col(name, (x) => x.lat?.[k]));
    console.log(
      `${name.padEnd(14)} ${f(median(l)).padStart(7)}; ${l.map((x) => f(x)).join(' ')}`.padEnd(57) +
        `${f(median(col(name, (x) => x.local.cpuUs)), 1).padStart(8)}  ` +
        (localOnly ? '(local names only)' : `${f(median(w)).padStart(7)}; ${w.map((x) => f(x)).join(' ')}`.padEnd(35) + `${f(median(col(name, (x) => x.fwd?.cpuUs)), 1).padStart(8)}  ` + `${f(lat('p50'), 3)} / ${f(lat('p99'), 3)} / ${f(lat('max'), 2)}`),
    );
  }
  for (const { name, localOnly } of targets.filter((t) => t.name !== 'dnsmasq')) {
    const local = ratios(name, 'local');
    // Best round against best round: under a load spike a round only loses, so the best is the
    // closest to what each server does on an idle machine (reported beside the median, not for the goal).
    const best = (n: string) => Math.max(...col(n, (x) => x.local.qps));
    const line =
      `${name}: median of per-round qps ratios to dnsmasq: local ${f(median(local), 2)}× (rounds ${local.map((x) => f(x, 2)).join(' ')}; ` +
      `best rounds ${f(best(name) / best('dnsmasq'), 2)}×; CPU per query ${f(median(col('dnsmasq', (x) => x.local.cpuUs)) / median(col(name, (x) => x.local.cpuUs)), 2)}× as efficient)`;
    if (localOnly) {
      console.log(line);
      continue;
    }
    const lost = rounds.reduce((n, r) => n + r.get(name)!.local.lost + (r.get(name)!.fwd?.lost ?? 0), 0);
    const p99 = median(col(name, (x) => x.lat?.p99));
    console.log(
      `${line}, forwarded ${f(median(ratios(name, 'fwd')), 2)}×; queries lost: ${lost}; ` +
        `goals: local qps ≥ 0.8× ${median(local) >= 0.8 ? 'met' : 'NOT met'}, local p99 < 2 ms ${p99 < 2 ? 'met' : 'NOT met'}`,
    );
  }
  // The two UDP paths of our server against each other, round by round.
  for (const w of WORKERS) {
    const [n, d] = [`native×${w}`, `dgram×${w}`];
    if (!rounds[0]?.has(n) || !rounds[0]?.has(d)) continue;
    const r = rounds.map((x) => x.get(n)!.local.qps / x.get(d)!.local.qps);
    const cpu = (name: string) => median(col(name, (x) => x.local.cpuUs));
    console.log(`${n} vs ${d}: median per-round local qps ratio ${f(median(r), 2)}× (rounds ${r.map((x) => f(x, 2)).join(' ')}); CPU µs per local query ${f(cpu(n), 1)} vs ${f(cpu(d), 1)}`);
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!);
else if (process.argv[2] === '--bare') serveBare(process.argv[3]!);
else await main();
