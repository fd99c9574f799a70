// DNS benchmark: tsoverlay's standalone DNS vs dnsmasq (Debian dnsmasq-base), same machine, same
// 10k names (our store's endpoint records / dnsmasq's --addn-hosts file), same loopback setup,
// measured with dnsperf: qps for local names and for names forwarded to a third server (another
// dnsmasq), and latency percentiles at a fixed rate. Everything binds 127.0.0.8x only.
// The machine is shared and noisy, so runs alternate between the two servers (paired) and the
// medians are reported, with the median of the per-pair ratios.
// Run: npx tsx bench/dns.ts [--names 10000] [--seconds 4] [--pairs 5] [--rate 10000] [--workers 2]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStandalone, type StandaloneOptions } from '../dns/standalone.js';
import { keys } from '../store/keys.js';
import { SqliteStore } from '../store/sqlite.js';
import { freePort } from '../test/harness/etcd.js';
import { tryRun } from '../test/harness/exec.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const NAMES = arg('names', 10_000);
const SECONDS = arg('seconds', 4);
const PAIRS = arg('pairs', 5);
const RATE = arg('rate', 10_000);
const WORKERS = arg('workers', 2);
const OURS = '127.0.0.81';
const DNSMASQ = '127.0.0.82';
const UPSTREAM = '127.0.0.83';

const addr = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${(i & 255) || 1}`;

interface Perf {
  qps: number;
  avgMs: number;
  lost: number;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

function startProc(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  p.stdout!.on('data', () => {});
  p.stderr!.on('data', () => {});
  return p;
}

async function dnsperf(server: string, port: number, file: string, extra: string[]): Promise<string> {
  const r = await tryRun('dnsperf', ['-s', server, '-p', String(port), '-d', file, '-t', '2', ...extra], { timeoutMs: (SECONDS + 30) * 1000 });
  return r.stdout;
}

async function throughput(server: string, port: number, file: string): Promise<Perf> {
  const out = await dnsperf(server, port, file, ['-l', String(SECONDS)]);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return { qps: num(/Queries per second:\s+([\d.]+)/), avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000, lost: num(/Queries lost:\s+(\d+)/) };
}

/** Latency percentiles at a fixed rate, from dnsperf's per-query lines (-v). */
async function latency(server: string, port: number, file: string): Promise<{ p50: number; p99: number; max: number }> {
  const out = await dnsperf(server, port, file, ['-l', '3', '-Q', String(RATE), '-v']);
  const xs = [...out.matchAll(/^> \w+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  const pct = (p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  return { p50: pct(50), p99: pct(99), max: xs.at(-1) ?? NaN };
}

async function waitAnswer(server: string, port: number, name: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const r = await tryRun('dig', ['+time=1', '+tries=1', '+short', `@${server}`, '-p', String(port), name]);
    if (r.stdout.trim()) return;
    await sleep(100);
  }
  throw new Error(`${server}:${port} never answered ${name}`);
}

/** `--serve JSON`: this file runs our server in its own process. */
async function serve(json: string): Promise<void> {
  const h = await serveStandalone(JSON.parse(json) as StandaloneOptions);
  process.on('SIGTERM', () => void h.stop().then(() => process.exit(0)));
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
  const procs: ChildProcess[] = [];
  try {
    const [portOurs, portMasq, portUp] = [await freePort(), await freePort(), await freePort()];
    const names = Array.from({ length: NAMES }, (_, i) => i);
    writeFileSync(join(dir, 'hosts'), names.map((i) => `${addr(i)} host${i}`).join('\n') + '\n');
    writeFileSync(join(dir, 'upstream-hosts'), names.map((i) => `${addr(i)} f${i}.example.test`).join('\n') + '\n');
    writeFileSync(join(dir, 'q-local'), names.map((i) => `host${i} A`).join('\n') + '\n');
    writeFileSync(join(dir, 'q-fwd'), names.map((i) => `f${i}.example.test A`).join('\n') + '\n');
    await fill(join(dir, 'store.db'));
    const masq = (listen: string, port: number, hosts: string, extra: string[]) =>
      startProc('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--bind-interfaces', `--listen-address=${listen}`, `--port=${port}`, '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--user=root', ...extra]);
    procs.push(masq(UPSTREAM, portUp, join(dir, 'upstream-hosts'), []));
    // No answer cache on either side for forwarded names: every query goes upstream.
    procs.push(masq(DNSMASQ, portMasq, join(dir, 'hosts'), [`--server=${UPSTREAM}#${portUp}`, '--cache-size=0']));
    const opts: StandaloneOptions = { storeUrl: `sqlite://${join(dir, 'store.db')}`, listen: [`${OURS}:${portOurs}`], upstreams: [`${UPSTREAM}:${portUp}`], workers: WORKERS };
    procs.push(startProc(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--serve', JSON.stringify(opts)]));
    await waitAnswer(UPSTREAM, portUp, 'f1.example.test');
    await waitAnswer(DNSMASQ, portMasq, 'host1');
    await waitAnswer(OURS, portOurs, 'host1');
    const targets = { tsoverlay: [OURS, portOurs], dnsmasq: [DNSMASQ, portMasq] } as const;
    for (const [, [h, p]] of Object.entries(targets)) await dnsperf(h, p, join(dir, 'q-local'), ['-n', '1']);
    const pairs: Pair[] = [];
    for (let r = 0; r < PAIRS; r++) {
      // Alternate which server goes first, so a drift in machine load favours neither.
      const order = r % 2 ? (['dnsmasq', 'tsoverlay'] as const) : (['tsoverlay', 'dnsmasq'] as const);
      const pair = {} as Pair;
      for (const kind of ['local', 'fwd'] as const) {
        for (const name of order) {
          const [h, p] = targets[name];
          (pair[name] ??= {} as Pair[keyof Pair])[kind] = await throughput(h, p, join(dir, kind === 'local' ? 'q-local' : 'q-fwd'));
        }
      }
      for (const name of order) {
        const [h, p] = targets[name];
        pair[name].lat = await latency(h, p, join(dir, 'q-local'));
      }
      pairs.push(pair);
    }
    report(pairs);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(300);
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Latency {
  p50: number;
  p99: number;
  max: number;
}
type Pair = Record<'tsoverlay' | 'dnsmasq', { local: Perf; fwd: Perf; lat: Latency }>;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function report(pairs: Pair[]): void {
  const f = (n: number, d = 0) => n.toFixed(d);
  const col = (name: 'tsoverlay' | 'dnsmasq', pick: (x: Pair['tsoverlay']) => number) => pairs.map((p) => pick(p[name]));
  console.log(`\nDNS benchmark: ${NAMES} names, ${PAIRS} alternating pairs of dnsperf runs (${SECONDS} s each), latency at ${RATE} qps over 3 s; tsoverlay workers: ${WORKERS || 1}`);
  console.log('server      local qps (median; runs)                fwd qps (median; runs)            local latency ms p50 / p99 / max (medians)');
  for (const name of ['tsoverlay', 'dnsmasq'] as const) {
    const l = col(name, (x) => x.local.qps);
    const w = col(name, (x) => x.fwd.qps);
    const lat = (k: keyof Latency) => median(col(name, (x) => x.lat[k]));
    console.log(
      `${name.padEnd(11)} ${f(median(l)).padStart(7)}; ${l.map((x) => f(x)).join(' ')}`.padEnd(60) +
        `${f(median(w)).padStart(7)}; ${w.map((x) => f(x)).join(' ')}`.padEnd(46) +
        `${f(lat('p50'), 3)} / ${f(lat('p99'), 3)} / ${f(lat('max'), 2)}`,
    );
  }
  const lost = pairs.reduce((n, p) => n + p.tsoverlay.local.lost + p.tsoverlay.fwd.lost, 0);
  const ratio = (k: 'local' | 'fwd') => median(pairs.map((p) => p.tsoverlay[k].qps / p.dnsmasq[k].qps));
  const p99 = median(col('tsoverlay', (x) => x.lat.p99));
  console.log(`median of paired ratios tsoverlay/dnsmasq: local ${f(ratio('local'), 2)}×, forwarded ${f(ratio('fwd'), 2)}×; queries lost by tsoverlay: ${lost}`);
  console.log(`goals: local qps ≥ 0.8× dnsmasq: ${ratio('local') >= 0.8 ? 'met' : 'NOT met'}; local p99 < 2 ms: ${p99 < 2 ? 'met' : 'NOT met'}`);
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!);
else await main();
