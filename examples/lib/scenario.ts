// What every example script stands on: network namespaces standing in for hosts and
// containers, background processes started inside them, and a cleanup that always runs (normal
// end, failure, Ctrl-C, SIGTERM) and removes everything the script made. Leftovers of a run that
// was killed outright (SIGKILL) are swept by the next run. Nothing touches the root namespace's
// links, routes, sysctls or firewall; spawns use argument arrays, never a shell.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Namespaces and temp dirs of examples: `tsox-<pid base 36>-<tag>-<name>`. */
export const PREFIX = 'tsox';
const NETNS_DIR = '/run/netns';
/** Where `ip netns exec NAME` finds per-namespace files (resolv.conf) to bind over /etc. */
const ETC_NETNS = '/etc/netns';
const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** The result of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
}

/** Run a command (argument array), never throwing for its exit status; killed after timeoutMs. */
export function tryRun(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${err.message}\n` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Run a command; throws with its stderr when it fails. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await tryRun(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** A network namespace made by the scenario. */
export class Netns {
  constructor(readonly name: string) {}

  get path(): string {
    return `${NETNS_DIR}/${this.name}`;
  }

  /** Run inside the namespace (nsenter keeps /sys and cgroups). */
  exec(cmd: string, args: string[], opts?: RunOptions): Promise<string> {
    return run('nsenter', [`--net=${this.path}`, '--', cmd, ...args], opts);
  }

  tryExec(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
    return tryRun('nsenter', [`--net=${this.path}`, '--', cmd, ...args], opts);
  }

  /**
   * Run with the namespace's own /etc/resolv.conf (see Scenario.resolvConf): `ip netns exec`
   * binds /etc/netns/NAME/* over /etc in a private mount namespace of the command.
   */
  tryExecWithNames(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
    return tryRun('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** `ip ARGS` inside the namespace. */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }
}

/** A process running in the background inside a namespace. */
export interface Background {
  readonly child: ChildProcess;
  /** Output lines so far (stdout and stderr). */
  readonly lines: string[];
  /** Resolves with the first line the predicate accepts (rejects on timeout or exit). */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** SIGTERM, SIGKILL after timeoutMs; resolves when it exited. */
  stop(timeoutMs?: number): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Kill every process left in a namespace, then delete it (and its /etc/netns files). Sync: usable at exit. */
function removeNamespaceSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  spawnSync('ip', ['netns', 'delete', name]);
  rmSync(join(ETC_NETNS, name), { recursive: true, force: true });
}

/**
 * Remove what earlier runs left when they were killed outright: namespaces and temp dirs named
 * `tsox-<pid>-…` whose process no longer exists. Another run's live namespaces are kept.
 */
export function sweepStale(): string[] {
  const swept: string[] = [];
  const dead = (name: string) => {
    const m = new RegExp(`^${PREFIX}-([0-9a-z]{1,7})-`).exec(name);
    return m !== null && !alive(parseInt(m[1]!, 36));
  };
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const name of list.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)) {
    if (dead(name)) {
      removeNamespaceSync(name);
      swept.push(name);
    }
  }
  if (existsSync(ETC_NETNS)) for (const d of readdirSync(ETC_NETNS)) if (dead(d)) rmSync(join(ETC_NETNS, d), { recursive: true, force: true });
  for (const d of readdirSync(tmpdir())) if (dead(d)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  return swept;
}

/** One example run: everything it makes is registered here and removed by cleanup(). */
export class Scenario {
  readonly prefix: string;
  /** A temp dir for state, sockets and logs (removed at cleanup). */
  readonly dir: string;
  private readonly namespaces: Netns[] = [];
  private readonly procs: Background[] = [];
  private readonly hooks: (() => Promise<unknown>)[] = [];
  private madeEtcNetns = false;
  private cleaning?: Promise<void>;
  private checks = 0;

  constructor(readonly tag: string) {
    if (!NAME.test(tag)) throw new Error(`scenario tag ${tag} must be a-z, 0-9, "-"`);
    this.prefix = `${PREFIX}-${process.pid.toString(36)}-${tag}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  }

  /** Create namespace `<prefix>-<name>` with loopback up. */
  async netns(name: string): Promise<Netns> {
    if (!NAME.test(name)) throw new Error(`namespace name ${name} must be a-z, 0-9, "-"`);
    const ns = new Netns(`${this.prefix}-${name}`);
    this.namespaces.push(ns);
    await run('ip', ['netns', 'add', ns.name]);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** A veth pair between two of our namespaces (made inside them), each end addressed and up. */
  async veth(a: Netns, aIf: string, aAddr: string, b: Netns, bIf: string, bAddr: string): Promise<void> {
    await a.ip('link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
    if (aAddr) await a.ip('addr', 'add', aAddr, 'dev', aIf);
    if (bAddr) await b.ip('addr', 'add', bAddr, 'dev', bIf);
    await a.ip('link', 'set', aIf, 'up');
    await b.ip('link', 'set', bIf, 'up');
  }

  /** Give a namespace its own resolv.conf (used by Netns.tryExecWithNames). */
  resolvConf(ns: Netns, nameservers: string[], search: string[] = []): void {
    if (!existsSync(ETC_NETNS)) this.madeEtcNetns = true;
    mkdirSync(join(ETC_NETNS, ns.name), { recursive: true });
    const lines = [...nameservers.map((n) => `nameserver ${n}`), ...(search.length ? [`search ${search.join(' ')}`] : []), 'options timeout:1 attempts:2'];
    writeFileSync(join(ETC_NETNS, ns.name, 'resolv.conf'), `${lines.join('\n')}\n`);
  }

  /** Start a long-running command inside a namespace; stopped (by its PID) at cleanup. */
  background(ns: Netns | undefined, cmd: string, args: string[], opts: { logFile?: string; env?: Record<string, string>; cwd?: string } = {}): Background {
    const argv = ns ? ['nsenter', `--net=${ns.path}`, '--', cmd, ...args] : [cmd, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    const log = opts.logFile ? createWriteStream(opts.logFile) : undefined;
    const lines: string[] = [];
    const waiters = new Set<{ match: (l: string) => boolean; resolve: (l: string) => void }>();
    let buf = '';
    const onData = (d: string) => {
      log?.write(d);
      const parts = (buf + d).split('\n');
      buf = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        for (const w of [...waiters]) if (w.match(line)) (waiters.delete(w), w.resolve(line));
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    const exited = new Promise<void>((resolve) => child.once('close', () => (log?.end(), resolve())));
    child.on('error', () => {});
    const bg: Background = {
      child,
      lines,
      waitForLine(match, timeoutMs = 30_000) {
        const seen = lines.find(match);
        if (seen !== undefined) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const w = { match, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
          const timer = setTimeout(() => (waiters.delete(w), reject(new Error(`${cmd}: no expected output within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`))), timeoutMs);
          waiters.add(w);
          void exited.then(() => {
            if (!waiters.delete(w)) return;
            clearTimeout(timer);
            reject(new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}):\n${lines.slice(-20).join('\n')}`));
          });
        });
      },
      async stop(timeoutMs = 5_000) {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      },
    };
    this.procs.push(bg);
    return bg;
  }

  /** Register extra cleanup (run before processes are stopped, last registered first). */
  onCleanup(fn: () => Promise<unknown>): void {
    this.hooks.push(fn);
  }

  /** Print a step heading. */
  step(text: string): void {
    process.stdout.write(`\n==> ${text}\n`);
  }

  /** Print a line of output. */
  say(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  /** Assert an outcome the example demonstrates: prints `ok: …` or throws `FAILED: …`. */
  expect(cond: boolean, what: string, detail = ''): void {
    if (!cond) throw new Error(`FAILED: ${what}${detail ? ` (${detail})` : ''}`);
    this.checks++;
    process.stdout.write(`ok: ${what}\n`);
  }

  /** Remove everything (idempotent; concurrent calls share one run). */
  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const fn of this.hooks.splice(0).reverse()) await fn().catch((e: Error) => process.stderr.write(`cleanup: ${e.message}\n`));
      for (const p of this.procs.splice(0).reverse()) await p.stop().catch(() => undefined);
      for (const ns of this.namespaces.splice(0).reverse()) removeNamespaceSync(ns.name);
      if (this.madeEtcNetns) {
        try {
          rmdirSync(ETC_NETNS);
        } catch {
          // another run still uses it, or it is not empty
        }
      }
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.cleaning;
  }

  /** Synchronous last resort (process exit without cleanup): kill our processes, drop our namespaces. */
  cleanupSync(): void {
    for (const p of this.procs) if (p.child.pid !== undefined && p.child.exitCode === null) p.child.kill('SIGKILL');
    for (const ns of this.namespaces) removeNamespaceSync(ns.name);
    rmSync(this.dir, { recursive: true, force: true });
  }

  get checksPassed(): number {
    return this.checks;
  }
}

/**
 * Run an example: stale leftovers swept, body run, cleanup always (also on SIGINT/SIGTERM/SIGHUP,
 * which exit 130/143/129 once everything is removed). Exit 0 when the body finished; 1 when a
 * check or a step failed (the message says which).
 */
export async function runScenario(tag: string, title: string, body: (s: Scenario) => Promise<void>): Promise<never> {
  if (process.getuid?.() !== 0) {
    process.stderr.write(`${title}: run as root (it creates network namespaces): sudo npx tsx examples/${tag}/run.ts\n`);
    process.exit(2);
  }
  const swept = sweepStale();
  const s = new Scenario(tag);
  if (swept.length) s.say(`(removed ${swept.length} namespaces left by an interrupted run)`);
  const exitHook = () => s.cleanupSync();
  process.on('exit', exitHook);
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up…\n`);
    void s.cleanup().finally(() => {
      process.off('exit', exitHook);
      process.exit(code);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('SIGHUP', () => onSignal('SIGHUP', 129));
  s.say(`${title}`);
  let code = 0;
  try {
    await body(s);
    s.say(`\nexample ${tag}: all ${s.checksPassed} checks passed`);
  } catch (err) {
    code = 1;
    const msg = (err as Error).message ?? String(err);
    process.stderr.write(`\n${msg.startsWith('FAILED') ? msg : `FAILED: ${(err as Error).stack ?? msg}`}\n`);
  }
  if (interrupted) return new Promise<never>(() => {});
  s.step('cleaning up');
  await s.cleanup();
  process.off('exit', exitHook);
  s.say('removed every namespace, process and file this example made');
  process.exit(code);
}
