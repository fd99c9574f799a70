// Fuzz: the tsoverlay CLI with random argv (commands, flags, values with unicode, shell
// metacharacters, bad URLs, ports, levels). Each run is a real process inside a test network
// namespace, with its state, sockets and files confined to a temp dir. Properties: a failure
// exits non-zero with a one-line message (or commander's usage text), never a stack trace;
// nothing hangs; no namespace is left behind.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tryRun } from '../harness/exec.js';
import { NetnsSet } from '../harness/netns.js';
import { onProcessEnd } from '../harness/proc.js';
import { caseSeed, mutateText, nastyString, randomChars, Rng } from './gen.js';
import { settings, show } from './runner.js';

const FILE = 'test/fuzz/cli.test.ts';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** tsx by absolute URL: the runs' working directory is the sandbox, not the checkout. */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
/** Per run; servers (daemon, dns serve) that accept their arguments are stopped at this point. */
const RUN_MS = 5_000;

/** A value with no path in it: argv cannot carry NUL, and '/' could point outside the sandbox. */
const noPath = (s: string) => s.replace(/[\0/]/g, '_');

/** Value makers per flag; `tmp` is the sandbox every path points into. */
function values(rng: Rng, tmp: string, netns: string): Record<string, () => string> {
  const junk = () => noPath(nastyString(rng)).slice(0, 400);
  const path = () => rng.oneOf(() => `${tmp}/p${rng.int(5)}`, () => `rel${rng.int(3)}/x`, () => '', junk);
  return {
    path,
    store: () =>
      rng.oneOf(
        () => `sqlite://${tmp}/s${rng.int(3)}.db`,
        () => `sqlite://${tmp}/${rng.pick(['%zz', '%00', 'a%2Fb', 'é', 'dir/'])}`,
        () => rng.pick(['sqlite://rel.db', 'sqlite:///', 'sqlite://', 'etcd://127.0.0.1:1?timeoutMs=300', 'etcd://[::1]:0', 'etcd://a b:1', 'etcds://u:p@127.0.0.1:1?timeoutMs=300', 'etcd://h:1?bogus=1', 'mysql://x', '']),
        () => noPath(mutateText(rng, 'etcd://127.0.0.1:1?timeoutMs=300')),
        junk,
      ),
    ip: () => rng.pick(['10.0.0.1', '::1', '0.0.0.0', '10.0.0.256', 'fe80::1%lo', '', junk()]),
    hostport: () => rng.pick(['127.0.0.1:0', '[::1]:0', '127.0.0.1:65536', '127.0.0.1', ':53', '10.0.0.1:53,10.0.0.2', '1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4', junk()]),
    port: () => rng.pick(['53', '0', '65535', '65536', '-1', '1e3', '0x35', '', junk()]),
    level: () => rng.pick(['info', 'debug', 'silent', 'INFO', 'verbose', '', junk()]),
    domain: () => rng.pick(['tsoverlay.', 'cluster.local', 'a..b', '-a.', 'x'.repeat(300), '', junk()]),
    docker: () => rng.pick([`unix://${tmp}/docker.sock`, 'tcp://127.0.0.1:1', 'http://x', '', junk()]),
    id: () => rng.pick(['h1', 'a'.repeat(64), 'a'.repeat(65), '-h', '', junk()]),
    netns: () => rng.pick([netns, 'rel', '', junk()]),
    cidrs: () => rng.pick(['10.0.0.0/8', '10.0.0.0/33,fd00::/8', '', junk()]),
    config: () => `${tmp}/config${rng.int(4)}.yaml`,
  };
}

/** Each command with its flags (flag → value kind, '' for a boolean). */
const COMMANDS: ReadonlyArray<{ argv: string[]; flags: Record<string, string>; sandbox: (tmp: string) => string[] }> = [
  {
    argv: ['daemon'],
    flags: { '--config': 'config', '--store': 'store', '--state-dir': 'path', '--host-id': 'id', '--advertise': 'ip', '--plugin-dir': 'path', '--socket': 'path', '--metrics': 'hostport', '--log-level': 'level', '--dns-domain': 'domain', '--dns-port': 'port', '--dns-upstream': 'hostport', '--docker-host': 'docker' },
    sandbox: (tmp) => ['--state-dir', `${tmp}/sd`, '--store', `sqlite://${tmp}/d.db`, '--plugin-dir', `${tmp}/plugins`, '--socket', `${tmp}/run/s.sock`, '--docker-host', `unix://${tmp}/docker.sock`],
  },
  ...(['network', 'endpoint', 'ipam', 'host'] as const).map((what) => ({
    argv: [what, 'ls'],
    flags: { '--store': 'store', '--state-dir': 'path', '--json': '', ...(what === 'endpoint' ? { '--network': 'id' } : what === 'ipam' ? { '--pool': 'id' } : {}) },
    sandbox: (tmp: string) => ['--state-dir', `${tmp}/sd`],
  })),
  { argv: ['install', 'cni'], flags: { '--dir': 'path', '--conf-dir': 'path', '--store': 'store', '--json': '' }, sandbox: (tmp) => ['--dir', `${tmp}/cni`] },
  { argv: ['install', 'docker'], flags: { '--dir': 'path', '--plugin-dir': 'path', '--socket': 'path', '--exec-path': 'path', '--state-dir': 'path', '--store': 'store' }, sandbox: (tmp) => ['--dir', `${tmp}/docker`] },
  { argv: ['doctor'], flags: { '--store': 'store', '--state-dir': 'path', '--json': '', '--host-id': 'id', '--netns': 'netns' }, sandbox: (tmp) => ['--state-dir', `${tmp}/sd`] },
  { argv: ['dns', 'serve'], flags: { '--listen': 'hostport', '--domain': 'domain', '--upstream': 'hostport', '--recursion-from': 'cidrs', '--store': 'store', '--state-dir': 'path' }, sandbox: (tmp) => ['--state-dir', `${tmp}/sd`, '--store', `sqlite://${tmp}/d.db`, '--listen', '127.0.0.1:0'] },
];

/** `box`: this run's own directory for the sandbox flags, so runs side by side never collide. */
function generate(rng: Rng, tmp: string, netns: string, box: string): string[] {
  const v = values(rng, tmp, netns);
  const cmd = rng.pick(COMMANDS);
  let argv: string[] = [...cmd.argv];
  const r = rng.next();
  if (r < 0.05) argv = argv.slice(0, 1);
  else if (r < 0.1) argv = [noPath(mutateText(rng, argv.join(' '))).split(' ')[0] ?? '', ...argv.slice(1)];
  else if (r < 0.12) argv = [];
  argv.push(...cmd.sandbox(box));
  const flags = Object.keys(cmd.flags);
  for (let n = rng.int(5); n > 0; n--) {
    const flag = rng.chance(0.9) ? rng.pick(flags) : rng.pick(['--bogus', '-x', '--json=1', '--', '-', '--store=', noPath(randomChars(rng, 4))]);
    const kind = cmd.flags[flag];
    argv.push(flag);
    if (kind) argv.push(v[kind]!());
  }
  if (rng.chance(0.05)) argv.push(noPath(nastyString(rng)).slice(0, 100));
  // Never ask for help or the version: they succeed by design and prove nothing here.
  return argv.filter((a) => !['-h', '--help', '-V', '--version', 'help'].includes(a));
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Process groups of the runs in flight (killed if the worker is stopped mid-run). */
const running = new Set<number>();

/** Run the CLI inside the namespace in its own process group; kill the group when it overstays. */
function runCli(argv: string[], netns: string, tmp: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmp, LANG: 'C.UTF-8' }; // no TSOVERLAY_* from our env
    const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, `--import=${TSX}`, join(ROOT, 'bin/tsoverlay.ts'), ...argv], { cwd: tmp, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    running.add(child.pid!);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, RUN_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child.pid!);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

function check(argv: string[], o: Outcome): string {
  const server = argv[0] === 'daemon' || (argv[0] === 'dns' && argv[1] === 'serve');
  if (STACK.test(o.stderr) || STACK.test(o.stdout)) throw new Error(`stack trace printed:\n${o.stderr}${o.stdout}`);
  if (o.timedOut) {
    if (!server) throw new Error(`no answer within ${RUN_MS} ms`);
    return `${argv[0]} kept serving`;
  }
  if (o.code === 0) return `${argv.slice(0, 2).join(' ')} ok`;
  // doctor's contract: exit 1 when a check fails, the report (not an error) on stdout.
  if (argv[0] === 'doctor' && o.code === 1 && o.stderr.trim() === '' && /checks? failed|"checks"/.test(o.stdout)) return 'doctor reported failures';
  // The daemon logs (JSON on stdout) why it could not start, then exits 1.
  if (argv[0] === 'daemon' && o.code === 1 && /"msg":"daemon failed to start"/.test(o.stdout)) return 'daemon failed to start (logged)';
  const lines = o.stderr.trim().split('\n').filter((l) => l.trim() !== '');
  if (/^Usage: /.test(lines[0] ?? '')) return `exit ${o.code} (usage)`;
  // commander's own format: "error: …" plus an optional "(Did you mean …?)" line; the words it
  // quotes are escaped and capped (daemon/cli-text.ts).
  const commander = /^error: /.test(lines[0] ?? '');
  // eslint-disable-next-line no-control-regex
  if (commander && (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(o.stderr) || lines.some((l) => l.length > 400))) {
    throw new Error(`commander echoed a word raw: ${show(o.stderr)}`);
  }
  const oneLine = lines.length === 1 || (lines.length === 2 && commander && /^\(Did you mean .*\?\)$/.test(lines[1]!));
  if (!oneLine) throw new Error(`exit ${o.code} without a one-line message: ${show(o.stderr)}`);
  return `exit ${o.code}`;
}

test('fuzz: CLI argv (real processes in a test namespace)', async (t) => {
  const s = settings(12, 300);
  const set = new NetnsSet('fzcli');
  const tmp = mkdtempSync(join(tmpdir(), 'tsot-fuzz-cli-'));
  const before = await namespaces();
  t.teardown(async () => {
    await set.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });
  const ns = await set.add('c');
  // Stopped by AVA's timeout (a long full run): no run, namespace or sandbox outlives the worker.
  t.teardown(onProcessEnd(() => {
    for (const pid of running) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'delete', ns.name]);
    rmSync(tmp, { recursive: true, force: true });
  }));
  for (let i = 0; i < 4; i++) writeFileSync(join(tmp, `config${i}.yaml`), ['hostId: h1\n', 'dnsPort: 0\n', 'bogus: 1\n', '{{{'][i]!);
  const indexes = s.only !== undefined ? [s.only] : Array.from({ length: s.cases }, (_, i) => i);
  const outcomes: Record<string, number> = {};
  const failed: string[] = [];
  const started = performance.now();
  // Two at a time: the machine is shared; each run is a node start-up.
  for (let k = 0; k < indexes.length; k += 2) {
    await Promise.all(indexes.slice(k, k + 2).map(async (i) => {
      const argv = generate(new Rng(caseSeed(s.seed, i)), tmp, ns.path, `${tmp}/run${i}`);
      const o = await runCli(argv, ns.path, tmp);
      try {
        const label = check(argv, o);
        outcomes[label] = (outcomes[label] ?? 0) + 1;
        if (process.env.TSO_FUZZ_VERBOSE) t.log(`${label}: ${o.stderr.trim().split('\n')[0]?.slice(0, 160) ?? ''}`);
      } catch (err) {
        failed.push(`[fuzz cli] seed ${s.seed} case ${i}: ${(err as Error).message}\n  argv: ${show(argv)}\n  replay: TSO_FUZZ_SEED=${s.seed} TSO_FUZZ_CASE=${i} node test/run.mjs ${FILE}`);
      }
    }));
  }
  t.log(`[fuzz cli] ${indexes.length} runs, seed ${s.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s, ${failed.length} failing; outcomes ${JSON.stringify(outcomes)}`);
  // Test (tsot-) and benchmark (tsob-) namespaces of other processes come and go meanwhile.
  const leaked = (await namespaces()).filter((n) => !before.includes(n) && !n.startsWith(set.prefix) && !/^tso[tb]-/.test(n));
  if (leaked.length) failed.push(`namespaces left behind: ${leaked.join(' ')}`);
  if (failed.length) t.fail(failed.join('\n\n'));
  else t.pass();
});

async function namespaces(): Promise<string[]> {
  const r = await tryRun('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}
