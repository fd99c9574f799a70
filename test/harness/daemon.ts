// Start `tsoverlay daemon` (from source, through tsx) inside a test namespace with its
// own state dir, store, plugin dir and socket; stop() sends SIGTERM and waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'bin', 'tsoverlay.ts');

export interface DaemonHandle {
  dir: string;
  stateDir: string;
  store: string;
  pluginDir: string;
  socket: string;
  child: ChildProcess;
  /** Every log line so far (JSON lines from pino). */
  logs: string[];
  /** Resolves with the first log record whose msg matches (or that the predicate accepts). */
  waitForLog(msg: string | RegExp | ((rec: Record<string, unknown>) => boolean), timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Parsed log records so far (lines that are not JSON are skipped). */
  records(): Record<string, unknown>[];
  /** SIGTERM and wait for exit (SIGKILL after timeoutMs); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Stop and remove the temp dir (unless keepDir). */
  cleanup(): Promise<void>;
}

/** How node runs the CLI: the sources through tsx (default), or the build; node's own flags. */
export interface CliNode {
  /** dist/bin/tsoverlay.js (the caller checks it is built and fresh). */
  compiled?: boolean;
  /** Flags for node itself, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
}

/**
 * Run `node --import=tsx bin/tsoverlay.ts ARGS` (optionally inside a namespace; `nsenterArgs`,
 * when given, are nsenter's own arguments and replace `--net=<netnsPath>`).
 */
export function spawnCli(args: string[], netnsPath?: string, nsenterArgs?: string[], how: CliNode = {}): ChildProcess {
  const entry = how.compiled ? [join(ROOT, 'dist', 'bin', 'tsoverlay.js')] : ['--import=tsx', CLI];
  const node = [process.execPath, ...(how.nodeArgs ?? []), ...entry, ...args];
  const enter = nsenterArgs ?? (netnsPath ? [`--net=${netnsPath}`] : undefined);
  const argv = enter ? ['nsenter', ...enter, '--', ...node] : node;
  return spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** What a finished CLI run printed. */
export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `tsoverlay ARGS` (as spawnCli) to its end; SIGKILL after `timeoutMs` keeps a test bounded. */
export function runCli(args: string[], timeoutMs = 60_000): Promise<CliOutcome> {
  const child = spawnCli(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr }))));
}

export interface StartDaemonOptions extends CliNode {
  /** Network namespace to run in (e.g. a Docker engine's, so its drivers make links there). */
  netnsPath?: string;
  hostId?: string;
  extraArgs?: string[];
  store?: string;
  /** Working dir (kept by cleanup when given); default a new temp dir. */
  dir?: string;
  /** --plugin-dir (e.g. `engine.pluginDir`); default `<dir>/plugins`. */
  pluginDir?: string;
  /**
   * nsenter arguments to start under instead of `--net=<netnsPath>`, e.g. `podman.enterArgs()`
   * so the daemon sees podman's private /run (the CNI_NETNS paths it is handed live there).
   */
  nsenterArgs?: string[];
}

type LogMatch = string | RegExp | ((rec: Record<string, unknown>) => boolean);

function matcher(msg: LogMatch): (rec: Record<string, unknown>) => boolean {
  if (typeof msg === 'function') return msg;
  const re = typeof msg === 'string' ? new RegExp(`^${msg}$`) : msg;
  return (rec) => re.test(String(rec.msg));
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<DaemonHandle> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tso-daemon-'));
  const stateDir = join(dir, 'state');
  const store = opts.store ?? `sqlite://${join(stateDir, 'store.db')}`;
  const pluginDir = opts.pluginDir ?? join(dir, 'plugins');
  const socket = join(dir, 'run', 'tsoverlay.sock');
  const args = ['daemon', '--state-dir', stateDir, '--store', store, '--plugin-dir', pluginDir, '--socket', socket];
  if (opts.hostId) args.push('--host-id', opts.hostId);
  args.push(...(opts.extraArgs ?? []));
  const child = spawnCli(args, opts.netnsPath, opts.nsenterArgs, opts);
  const logs: string[] = [];
  const waiters: { match: (rec: Record<string, unknown>) => boolean; resolve: (r: Record<string, unknown>) => void }[] = [];
  let buf = '';
  const onLine = (line: string) => {
    logs.push(line);
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    for (const w of [...waiters]) {
      if (w.match(rec)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(rec);
      }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (buf + d).split('\n');
    buf = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => logs.push(d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const handle: DaemonHandle = {
    dir,
    stateDir,
    store,
    pluginDir,
    socket,
    child,
    logs,
    // Generous: a start on a loaded 2-core machine took over 20 s (store to ready).
    waitForLog(msg, timeoutMs = 60_000) {
      const match = matcher(msg);
      const seen = handle.records().find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log "${String(msg)}" within ${timeoutMs} ms; logs:\n${logs.join('\n')}`)), timeoutMs);
        exited.then((code) => reject(new Error(`daemon exited (${code}) before log "${String(msg)}"; logs:\n${logs.join('\n')}`)));
        waiters.push({ match, resolve: (r) => { clearTimeout(timer); resolve(r); } });
      });
    },
    records() {
      const out: Record<string, unknown>[] = [];
      for (const l of logs) {
        try {
          const r = JSON.parse(l);
          if (r && typeof r === 'object') out.push(r);
        } catch {
          // stderr text or a partial line
        }
      }
      return out;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async cleanup() {
      await handle.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
