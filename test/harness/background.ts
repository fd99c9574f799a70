// Long-running programs (plugin daemons, echo servers) started inside a network
// namespace with nsenter, output to a log file, stopped by their own pid.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { HarnessError } from './harness-error.js';
import { onProcessEnd } from './proc.js';

export interface BackgroundOptions {
  /** Network namespace path (e.g. `Netns.path`); omitted: the caller's namespace. */
  netns?: string;
  /** stdout and stderr go here (appended). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A started program; `stop()` always ends it (SIGTERM, then SIGKILL). */
export interface BackgroundProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or 128+signal) when the program ends. */
  readonly exited: Promise<number>;
  /** The log so far (for assertion messages). */
  log(): string;
  stop(graceMs?: number): Promise<void>;
}

/** Start `cmd args` in the background; nsenter execs the program, so `pid` is the program itself. */
export function startBackground(cmd: string, args: string[], opts: BackgroundOptions): BackgroundProcess {
  const fd = openSync(opts.logFile, 'a');
  const argv = opts.netns ? ['nsenter', `--net=${opts.netns}`, '--', cmd, ...args] : [cmd, ...args];
  let child;
  try {
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new HarnessError('harness-spawn', 'internal', `${cmd} did not start`);
  child.unref();
  // Last resort when the test process exits without calling stop().
  const unregisterExit = onProcessEnd(() => child.kill('SIGKILL'));
  const exited = new Promise<number>((resolve) => {
    const done = (code: number) => {
      unregisterExit();
      resolve(code);
    };
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? 9 : 0)));
    child.once('error', () => done(127));
  });
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 3_000) =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // The timers stay referenced: they keep the event loop (and so this wait) alive.
      child.kill('SIGTERM');
      if ((await raceTimeout(exited, graceMs)) === 'late') {
        child.kill('SIGKILL');
        if ((await raceTimeout(exited, 5_000)) === 'late') {
          throw new HarnessError('harness-kill-timeout', 'internal', `pid ${pid} survived SIGKILL`);
        }
      }
    })());
  const log = () => {
    try {
      return readFileSync(opts.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return { pid, logFile: opts.logFile, exited, log, stop };
}

function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
