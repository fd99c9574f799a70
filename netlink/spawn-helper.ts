// A small child process that spawns the tools for a big one. fork() copies the parent's page
// tables, so each spawn from a daemon with a large heap blocks its event loop for several ms
// (~8 ms at ~150 MB RSS, ~35 ms at 350 MB); the helper (a bare Node, ~45 MB) forks in ~1.5 ms,
// off the daemon's thread. Same contract as spawnCollect; if the helper is gone, spawnCollect.
import { spawn, type ChildProcess } from 'node:child_process';
import { spawnCollect, type Outcome } from './runner.js';

/** The helper's program (plain ESM, given with -e: no file to find in src/ or dist/). */
const CHILD = `
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
const env = { ...process.env, LC_ALL: 'C' };
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  let r;
  try { r = JSON.parse(line); } catch { return; }
  let child;
  try {
    child = spawn(r.argv[0], r.argv.slice(1), { stdio: [r.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: r.env ?? env });
  } catch (e) { return send({ id: r.id, error: String(e && e.message || e) }); }
  const out = [], err = [];
  let timedOut = false, done = false;
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, r.timeoutMs);
  child.on('error', (e) => { clearTimeout(timer); if (!done) { done = true; send({ id: r.id, error: String(e && e.message || e) }); } });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    if (done) return;
    done = true;
    send({ id: r.id, code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
  });
  if (r.input !== undefined) { child.stdin.on('error', () => {}); child.stdin.end(r.input); }
});
process.stdin.on('end', () => process.exit(0));
`;

interface Pending {
  resolve(o: Outcome): void;
  reject(e: Error): void;
}

/**
 * Spawns through one long-lived helper child. `collect` has spawnCollect's signature (pass it
 * as KernelOptions.spawn); `close()` ends the helper (it also exits when this process dies).
 */
export class SpawnHelper {
  private child?: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buf = '';
  private closed = false;

  /**
   * Run argv like spawnCollect (timeout kills it; rejects only when it cannot spawn). `env`
   * (benchmarks, tests) replaces the environment; default: this process's, with LC_ALL=C.
   */
  readonly collect = (argv: string[], input: string | undefined, timeoutMs: number, env?: Record<string, string>): Promise<Outcome> => {
    const child = this.ensure();
    if (!child) return env ? Promise.reject(new Error('the spawn helper is closed')) : spawnCollect(argv, input, timeoutMs);
    const id = this.nextId++;
    if (this.pending.size === 0) this.hold(child, true);
    return new Promise<Outcome>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin!.write(JSON.stringify({ id, argv, input, timeoutMs, env }) + '\n');
    });
  };

  /** End the helper; later calls spawn directly. */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private ensure(): ChildProcess | undefined {
    if (this.closed) return undefined;
    if (this.child) return this.child;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    } catch {
      return undefined;
    }
    child.stdin!.on('error', () => {});
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    child.on('exit', () => this.onExit(child));
    child.on('error', () => this.onExit(child));
    // An idle helper never keeps this process alive; one with work in flight does.
    this.hold(child, false);
    this.child = child;
    return child;
  }

  private hold(child: ChildProcess, on: boolean): void {
    for (const h of [child, child.stdin, child.stdout] as Array<{ ref?: () => void; unref?: () => void } | null>) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  private onData(d: string): void {
    this.buf += d;
    for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      let m: { id: number; error?: string } & Partial<Outcome>;
      try {
        m = JSON.parse(line);
      } catch {
        continue;
      }
      const p = this.pending.get(m.id);
      if (!p) continue;
      this.pending.delete(m.id);
      if (this.pending.size === 0 && this.child) this.hold(this.child, false);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve({ code: m.code ?? 1, stdout: m.stdout ?? '', stderr: m.stderr ?? '', timedOut: m.timedOut ?? false });
    }
  }

  /** The helper died: what it had in flight failed (their tools may have run: report, not retry). */
  private onExit(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.buf = '';
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new Error('the spawn helper exited'));
    }
  }
}
