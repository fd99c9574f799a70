// One long-lived `nft -i` per namespace for small transactions. A separate `nft -f -` per change
// costs a process start (~3-5 ms) and, after any delete, ~10-15 ms more at exit: closing the
// netlink socket waits for the kernel to free deleted objects after an RCU grace period. A
// session keeps its socket open, so that wait happens in the background. Each transaction is
// one input line (nft runs a line as one batch: all or nothing), followed by a `describe`
// command whose fixed output marks the end; errors arrive on stderr before it.
import { spawn, type ChildProcess } from 'node:child_process';
import { ProxyError } from './errors.js';

/** A userspace-only command (no kernel access) and the start of what it prints. */
const MARKER = 'describe meta mark';
const MARKER_OUT = 'meta expression, datatype mark';

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class NftSession {
  private child?: ChildProcess;
  private out = '';
  private err = '';
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * @param argv e.g. [nsenter, --net=…, --, stdbuf, -oL, -eL, /usr/sbin/nft, -i]: stdout must be
   *   line-buffered (stdbuf), or the marker would sit in nft's buffer.
   */
  constructor(
    private readonly argv: readonly string[],
    private readonly timeoutMs = 10_000,
  ) {}

  /** Apply `statements` as one transaction; rejects with nft's error text (code nft-failed). */
  run(statements: readonly string[]): Promise<void> {
    if (statements.some((s) => s.includes('\n') || s.includes('\r'))) return Promise.reject(new ProxyError('internal', 'nft statement spans lines'));
    const next = this.queue.then(() => this.once(statements.join('; ')));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private start(): ChildProcess {
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      if (this.pending && this.out.includes(MARKER_OUT)) {
        this.out = '';
        // stderr was written before the marker: let its pending data event run first.
        setImmediate(() => this.settle());
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    child.stdin!.on('error', () => {});
    child.on('error', (e) => this.fail(child, new ProxyError('nft-failed', `nft session: ${e.message}`, { retryable: true })));
    child.on('exit', (code) => this.fail(child, new ProxyError('nft-failed', `nft session exited ${code}: ${this.err.trim()}`, { retryable: true })));
    // A session must not keep the process alive: it ends when our stdin closes.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }

  private once(line: string): Promise<void> {
    this.child ??= this.start();
    this.out = '';
    this.err = '';
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.close();
        reject(new ProxyError('nft-failed', `nft session: no answer in ${this.timeoutMs} ms`, { retryable: true }));
      }, this.timeoutMs);
      this.pending = { resolve, reject, timer };
      this.child!.stdin!.write(`${line}\n${MARKER}\n`);
    });
  }

  private settle(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    const err = this.err.trim();
    this.err = '';
    if (err) p.reject(new ProxyError('nft-failed', `nft: ${err}`));
    else p.resolve();
  }

  private fail(child: ChildProcess, e: Error): void {
    if (this.child !== child) return;
    this.child = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }

  /** The session process's PID while it runs (tests, doctor). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stop the session's process (ours, by its handle); the next run() starts another. */
  close(): void {
    const c = this.child;
    this.child = undefined;
    if (c && c.exitCode === null) {
      c.stdin?.end();
      c.kill('SIGKILL');
    }
  }
}
