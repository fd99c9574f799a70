// NetnsRunner: the ONE place that knows how a network namespace is entered (CONVENTIONS rule 8).
// A path runs the tool under `nsenter --net=<path> --`; null runs it in the caller's namespace.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { classify, KernelError } from './errors.js';

/** Absolute paths (or PATH names) of the tools this layer spawns. */
export interface ToolPaths {
  ip: string;
  bridge: string;
  nsenter: string;
  sysctl: string;
}

export type Tool = keyof Omit<ToolPaths, 'nsenter'>;

const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/**
 * Find the tools once at start-up (CNI runtimes may call us with a PATH lacking /usr/sbin).
 * A tool found nowhere stays a bare name, resolved through PATH at spawn.
 */
export function detectTools(): ToolPaths {
  const find = (name: string) => SEARCH_DIRS.map((d) => `${d}/${name}`).find((p) => existsSync(p)) ?? name;
  return { ip: find('ip'), bridge: find('bridge'), nsenter: find('nsenter'), sysctl: find('sysctl') };
}

/** What a spawned tool did. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * The argv that runs `bin args` inside the namespace at `netns` (null: the caller's own).
 * Every tool any tsoverlay module runs in a namespace is entered through this function.
 */
export function netnsArgv(nsenter: string, netns: string | null, bin: string, args: readonly string[]): string[] {
  return netns === null ? [bin, ...args] : [nsenter, `--net=${netns}`, '--', bin, ...args];
}

/** Spawn argv (no shell), feed `input` on stdin, collect output; killed after timeoutMs. Rejects only when it cannot spawn. */
export function spawnCollect(argv: string[], input: string | undefined, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // Messages are classified by text: keep them in English.
      env: { ...process.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
    if (input !== undefined) {
      // The tool may exit before reading everything (first failing batch line): ignore EPIPE.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
  });
}

/** Runs iproute2/sysctl inside a namespace given by path; failures become KernelError. */
export class NetnsRunner {
  constructor(
    private readonly tools: ToolPaths = detectTools(),
    private readonly defaultTimeoutMs = 30_000,
    /** How to spawn (default spawnCollect; a daemon passes SpawnHelper.collect). */
    private readonly spawnFn: typeof spawnCollect = spawnCollect,
  ) {}

  /** The argv that runs `tool args` inside `netns` (null = here). Paths are validated by callers. */
  private enter(netns: string | null, tool: Tool, args: string[]): string[] {
    return netnsArgv(this.tools.nsenter, netns, this.tools[tool], args);
  }

  /**
   * Run `tool args` in `netns` with optional stdin; resolve with stdout, or throw KernelError
   * whose code is classified from stderr (a failing `-batch` line is put in details.line).
   */
  async run(netns: string | null, tool: Tool, args: string[], input?: string, timeoutMs?: number): Promise<string> {
    const command = this.enter(netns, tool, args);
    let r: Outcome;
    try {
      r = await this.spawnFn(command, input, timeoutMs ?? this.defaultTimeoutMs);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new KernelError('ENOEXEC', `cannot run ${command[0]}: ${msg}`, { command, netns });
    }
    if (r.code === 0 && !r.timedOut) return r.stdout;
    throw this.failure(netns, command, r, input);
  }

  private failure(netns: string | null, command: string[], r: Outcome, input?: string): KernelError {
    const stderr = r.stderr.trim();
    const details = { command, netns, stderr };
    if (r.timedOut) return new KernelError('ETIMEDOUT', `${command.join(' ')} timed out`, details);
    // nsenter reports its own failures ("nsenter: cannot open <path>: …") before the tool runs.
    if (netns !== null && /^nsenter: /m.test(stderr)) {
      if (/failed to execute/.test(stderr)) return new KernelError('ENOEXEC', stderr, details);
      const code = classify(stderr);
      return new KernelError(code === 'EKERNEL' ? 'ENOENT' : code, `network namespace ${netns}: ${stderr}`, details);
    }
    const failed = /Command failed -:(\d+)/.exec(stderr);
    const line = failed && input !== undefined ? input.split('\n')[Number(failed[1]) - 1] : undefined;
    const message = stderr.replace(/\n?Command failed -:\d+\s*$/, '').trim() || `exit status ${r.code}`;
    const tool = basename((netns === null ? command[0] : command[command.indexOf('--') + 1]) ?? '');
    return new KernelError(classify(message), `${line ? `${tool} ${line}` : tool}: ${message}`, { ...details, line });
  }
}
