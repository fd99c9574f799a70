// Benchmark: tsbridge+tsipam vs the reference bridge+host-local (Debian containernetworking-
// plugins), same options, each ADD/DEL a separate executable run on a fresh container
// namespace inside a bench host namespace, interleaved. Also: tsbridge handed off to a daemon
// (a hand-off server run by this script in the host namespace), the compiled launcher
// (bin/launcher/, needs `npm run build`) via that daemon and standalone, 100 concurrent ADDs, VERSION.
// Run: npx tsx bench/cni.ts  (uses dist/ when built and fresh, else tsx wrappers; says which).
// Env: CNI_BENCH_N (rounds, default 20), CNI_BENCH_CONCURRENT (default 100). Builds nothing.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SpawnHelper } from '../netlink/spawn-helper.js';
import { benchCniDaemon } from './cni-daemon.js';
import { pct } from './stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const REF = '/usr/lib/cni';
const N = Number(process.env.CNI_BENCH_N ?? 20);
const CONCURRENT = Number(process.env.CNI_BENCH_CONCURRENT ?? 100);
const PLUGINS = ['tsbridge', 'tsipam', 'tsportmap', 'tshost'];
/** Network tags seen, for distinct subnets (10.<100+o>.0.0/16 ours, 10.<200+o> reference). */
const NET_TAGS: string[] = [];

/**
 * Every timed call is forked by one small helper process (netlink/spawn-helper), for ours and
 * the reference alike: forking from this big tsx process would add several ms per call to
 * both (and serialise 100 "concurrent" starts), which is the harness, not the plugins.
 */
const spawner = new SpawnHelper();

async function timed(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const t0 = performance.now();
  const r = await spawner.collect([cmd, ...args], input, 120_000, vars);
  return { ...r, ms: performance.now() - t0 };
}

function sh(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - t0 }));
    c.stdin.on('error', () => {});
    c.stdin.end(input ?? '');
  });
}

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** Our executables: dist/ when built and newer than the CNI sources, else tsx wrappers. */
function ourBin(dir: string): string {
  const fresh = PLUGINS.every((p) => {
    const out = join(ROOT, 'dist', 'bin', `${p}.js`);
    const h = join(ROOT, 'dist', 'plugins', 'cni', `${p}-handlers.js`);
    return existsSync(out) && existsSync(h) && statSync(h).mtimeMs >= statSync(join(ROOT, 'plugins', 'cni', `${p}-handlers.ts`)).mtimeMs;
  });
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  for (const p of PLUGINS) {
    const cmd = fresh ? `exec '${process.execPath}' '${join(ROOT, 'dist', 'bin', `${p}.js`)}'` : `exec '${process.execPath}' --import='${loader}' '${join(ROOT, 'bin', `${p}.ts`)}'`;
    writeFileSync(join(dir, p), `#!/bin/sh\n${cmd} "$@"\n`);
    chmodSync(join(dir, p), 0o755);
  }
  console.log(`our plugins: ${fresh ? 'compiled JS from dist/ (fresh)' : 'TypeScript through tsx (dist/ missing or stale: run npm run build for fair figures)'}`);
  return dir;
}

/** Launcher copies (as `install cni` lays them out) in `dir`, or undefined when not built. */
function launcherBin(dir: string): string | undefined {
  const launcher = join(ROOT, 'dist', 'bin', 'cni-launcher');
  if (!existsSync(launcher) || statSync(launcher).mtimeMs < statSync(join(ROOT, 'bin', 'launcher', 'cni-launcher.c')).mtimeMs) {
    console.log('launcher: not built or stale (npm run build): no launcher rows');
    return undefined;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tsoverlay-launcher.conf'), `node=${process.execPath}\ndist=${join(ROOT, 'dist')}\n`);
  for (const p of PLUGINS) copyFileSync(launcher, join(dir, p));
  return dir;
}

interface Setup {
  host: string;
  work: string;
  bin: string;
  /** Launcher copies, when built. */
  launcher?: string;
  prefix: string;
  made: string[];
}

async function netns(s: Setup, name: string): Promise<string> {
  const full = `${s.prefix}-${name}`;
  await must('ip', ['netns', 'add', full]);
  s.made.push(full);
  await must('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
  return `/var/run/netns/${full}`;
}

function call(s: Setup, file: string, command: string, conf: object, id: string, ns?: string) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_PATH: `${s.bin}:${REF}`, TSOVERLAY_CNI_LOCK_DIR: s.work };
  if (ns) env.CNI_NETNS = ns;
  return timed('nsenter', [`--net=/var/run/netns/${s.host}`, '--', file], JSON.stringify(conf), env);
}

function confs(s: Setup, ipMasq: boolean, tag: string, daemonSocket: string) {
  // A network per tag, each with its own subnet (tsipam pools must not overlap).
  const o = (ipMasq ? 1 : 0) + 2 * (NET_TAGS.indexOf(tag) >= 0 ? NET_TAGS.indexOf(tag) : NET_TAGS.push(tag) - 1);
  return {
    ours: { cniVersion: '1.0.0', name: `b-ours-${tag}`, type: 'tsbridge', bridge: `tsb${tag}`, isGateway: true, ipMasq, store: `sqlite://${join(s.work, 'store.db')}`, daemonSocket,
      ipam: { type: 'tsipam', ranges: [[{ subnet: `10.${100 + o}.0.0/16` }]], routes: [{ dst: '0.0.0.0/0' }] } },
    ref: { cniVersion: '1.0.0', name: `b-ref-${tag}`, type: 'bridge', bridge: `ref${tag}`, isGateway: true, ipMasq,
      ipam: { type: 'host-local', ranges: [[{ subnet: `10.${200 + o}.0.0/16` }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(s.work, 'host-local') } },
  };
}

type Series = Record<string, { add: number[]; del: number[] }>;

async function rounds(s: Setup, ipMasq: boolean, daemonSock: string | undefined, series: Series): Promise<void> {
  const tag = `${ipMasq ? 'm' : 'n'}${daemonSock ? 'd' : 's'}`;
  const c = confs(s, ipMasq, tag, daemonSock ?? join(s.work, 'no-daemon.sock'));
  const kinds: Array<[string, string, object]> = [
    [`tsbridge+tsipam${daemonSock ? ' (daemon)' : ''}`, join(s.bin, 'tsbridge'), c.ours],
    ['bridge+host-local', join(REF, 'bridge'), c.ref],
  ];
  // The launcher on its own network (same options): standalone it execs the same Node entry.
  if (s.launcher) kinds.push([`tsbridge+tsipam (launcher${daemonSock ? ', daemon' : ''})`, join(s.launcher, 'tsbridge'), confs(s, ipMasq, `${tag}l`, daemonSock ?? join(s.work, 'no-daemon.sock')).ours]);
  // Warm-up (creates the bridges, first-use costs) is not counted.
  for (let i = -1; i < N; i++) {
    const order = i % 2 === 0 ? kinds : [...kinds].reverse();
    for (const [label, file, conf] of order) {
      const id = `${tag}${label.length}r${i + 1}`;
      const ns = await netns(s, id);
      const add = await call(s, file, 'ADD', conf, id, ns);
      if (add.code !== 0) throw new Error(`${label} ADD: ${add.stdout}${add.stderr}`);
      const del = await call(s, file, 'DEL', conf, id, ns);
      if (del.code !== 0) throw new Error(`${label} DEL: ${del.stdout}${del.stderr}`);
      if (i < 0) continue;
      const key = `${label}, ipMasq ${ipMasq ? 'on' : 'off'}`;
      (series[key] ??= { add: [], del: [] }).add.push(add.ms);
      series[key]!.del.push(del.ms);
    }
  }
}

async function concurrent(s: Setup, label: string, file: string, conf: object): Promise<number> {
  const ids = Array.from({ length: CONCURRENT }, (_, i) => `cc${label}${i}`);
  const nss = await Promise.all(ids.map((id) => netns(s, id)));
  const t0 = performance.now();
  const res = await Promise.all(ids.map((id, i) => call(s, file, 'ADD', conf, id, nss[i])));
  const wall = performance.now() - t0;
  if (process.env.CNI_BENCH_VERBOSE) console.log(`  ${label}: per-call p10/p50/p90 ${ms(pct(res.map((r) => r.ms), 10))} / ${ms(pct(res.map((r) => r.ms), 50))} / ${ms(pct(res.map((r) => r.ms), 90))}`);
  const failed = res.filter((r) => r.code !== 0);
  if (failed.length) throw new Error(`${label}: ${failed.length} concurrent ADDs failed: ${failed[0]!.stdout}${failed[0]!.stderr}`);
  await Promise.all(ids.map((id, i) => call(s, file, 'DEL', conf, id, nss[i])));
  return wall;
}

/** The daemon's side for the hand-off mode: run in the host namespace by this same script. */
async function serve(sock: string, storeUrl: string): Promise<void> {
  const { serveHandOff } = await import('../plugins/cni/handoff-server.js');
  // As the daemon (daemon/daemon.ts): iproute2 forked by a small helper, not by this big process.
  const { specFor } = await benchCniDaemon(storeUrl, spawner.collect);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', async () => {
      const t0 = performance.now();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { env?: { CNI_COMMAND?: string } };
      const out = await serveHandOff(body, specFor);
      res.writeHead(out.status, { 'content-type': 'application/json' }).end(JSON.stringify(out.body));
      // The daemon's own share of each call, for the report.
      process.stdout.write(`served ${body.env?.CNI_COMMAND} ${(performance.now() - t0).toFixed(2)}\n`);
    });
  });
  server.listen(sock, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

interface Daemon {
  sock: string;
  stop: () => void;
  /** Milliseconds the daemon spent per command (ADD, DEL). */
  served: Record<string, number[]>;
}

async function startDaemon(s: Setup, storeUrl: string): Promise<Daemon> {
  const sock = join(s.work, 'daemon.sock');
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const child = spawn('nsenter', [`--net=/var/run/netns/${s.host}`, '--', process.execPath, `--import=${loader}`, fileURLToPath(import.meta.url), '--serve', sock, storeUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
  const served: Record<string, number[]> = {};
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const [word, command, value] = buf.slice(0, i).split(' ');
        buf = buf.slice(i + 1);
        if (word === 'ready') resolve();
        else if (word === 'served' && command) (served[command] ??= []).push(Number(value));
      }
    });
    child.once('exit', (code) => reject(new Error(`hand-off server exited ${code}`)));
  });
  return { sock, stop: () => child.kill('SIGTERM'), served };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(process.argv[3]!, process.argv[4]!);
  const work = mkdtempSync(join(tmpdir(), 'tsob-cni-'));
  const prefix = `tsob-${Math.random().toString(16).slice(2, 8)}`;
  const s: Setup = { host: `${prefix}-h`, work, bin: '', prefix, made: [] };
  let daemon: Daemon | undefined;
  try {
    await netns(s, 'h');
    const binDir = join(work, 'bin');
    await must('mkdir', ['-p', binDir]);
    s.bin = ourBin(binDir);
    s.launcher = launcherBin(join(work, 'launcher'));
    const v = { ours: [] as number[], ref: [] as number[], launcher: [] as number[] };
    for (let i = 0; i < 20; i++) {
      v.ours.push((await call(s, join(s.bin, 'tsbridge'), 'VERSION', { cniVersion: '1.0.0' }, 'v')).ms);
      v.ref.push((await call(s, join(REF, 'bridge'), 'VERSION', { cniVersion: '1.0.0' }, 'v')).ms);
      if (s.launcher) v.launcher.push((await call(s, join(s.launcher, 'tsbridge'), 'VERSION', { cniVersion: '1.0.0' }, 'v')).ms);
    }
    const vl = s.launcher ? `, launcher ${ms(pct(v.launcher, 50))} (${(pct(v.launcher, 50) / pct(v.ref, 50)).toFixed(2)}×)` : '';
    console.log(`VERSION p50 (each through nsenter): tsbridge ${ms(pct(v.ours, 50))}${vl}, reference bridge ${ms(pct(v.ref, 50))}`);
    const series: Series = {};
    for (const ipMasq of [false, true]) await rounds(s, ipMasq, undefined, series);
    const d = await startDaemon(s, `sqlite://${join(work, 'store.db')}`);
    daemon = d;
    for (const ipMasq of [false, true]) await rounds(s, ipMasq, d.sock, series);
    const inDaemon = { ...d.served };
    console.log(`\n${N} rounds each, fresh namespace per ADD, interleaved (p50 / p95):`);
    for (const [k, x] of Object.entries(series)) console.log(`  ${k.padEnd(52)} ADD ${ms(pct(x.add, 50))} / ${ms(pct(x.add, 95))}   DEL ${ms(pct(x.del, 50))} / ${ms(pct(x.del, 95))}`);
    for (const ipMasq of [false, true]) {
      const ref = series[`bridge+host-local, ipMasq ${ipMasq ? 'on' : 'off'}`]!;
      for (const mode of ['', ' (daemon)', ' (launcher)', ' (launcher, daemon)']) {
        const o = series[`tsbridge+tsipam${mode}, ipMasq ${ipMasq ? 'on' : 'off'}`];
        if (!o) continue;
        console.log(`  ratio${(mode || ' (standalone)').padEnd(20)} ipMasq ${ipMasq ? 'on ' : 'off'}: ADD ${(pct(o.add, 50) / pct(ref.add, 50)).toFixed(2)}× (goal ≤ 1.5)  DEL ${(pct(o.del, 50) / pct(ref.del, 50)).toFixed(2)}× (goal ≤ 1.0)`);
      }
    }
    console.log(`  the daemon's own share (p50): ADD ${ms(pct(inDaemon.ADD ?? [0], 50))}, DEL ${ms(pct(inDaemon.DEL ?? [0], 50))}`);
    const c = confs(s, true, 'cc', join(work, 'no-daemon.sock'));
    const cd = confs(s, true, 'cd', d.sock);
    const wOurs = await concurrent(s, 'o', join(s.bin, 'tsbridge'), c.ours);
    const wDaemon = await concurrent(s, 'd', join(s.bin, 'tsbridge'), cd.ours);
    const servedBefore = d.served.ADD?.length ?? 0;
    const wLauncher = s.launcher ? await concurrent(s, 'l', join(s.launcher, 'tsbridge'), confs(s, true, 'cl', d.sock).ours) : undefined;
    const inside = (d.served.ADD ?? []).slice(servedBefore);
    if (process.env.CNI_BENCH_VERBOSE && inside.length) console.log(`  l: inside the daemon p10/p50/p90 ${ms(pct(inside, 10))} / ${ms(pct(inside, 50))} / ${ms(pct(inside, 90))}`);
    const wRef = await concurrent(s, 'r', join(REF, 'bridge'), c.ref);
    const lw = wLauncher === undefined ? '' : `, launcher via daemon ${ms(wLauncher)} (${(wLauncher / wRef).toFixed(2)}×)`;
    console.log(`\n${CONCURRENT} concurrent ADDs (ipMasq on), wall: tsbridge ${ms(wOurs)} (${(wOurs / wRef).toFixed(2)}×), via daemon ${ms(wDaemon)} (${(wDaemon / wRef).toFixed(2)}×)${lw}, reference ${ms(wRef)} (goal ≤ 0.5×)`);
  } finally {
    daemon?.stop();
    spawner.close();
    for (const n of s.made.reverse()) await sh('ip', ['netns', 'delete', n]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
