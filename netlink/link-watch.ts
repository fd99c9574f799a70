// LinkWatch: tells when a link has left one namespace's device list, from /proc/<pid>/net/dev
// (an in-process file read, no spawn). Polls only while someone waits: one read per tick for all.
import { readFile } from 'node:fs/promises';

/** How a LinkWatch reads its namespace's device list (injectable for tests). */
export interface LinkWatchOptions {
  /**
   * The namespace the watch observes, as NetnsHandle paths are given: null = this process's own
   * (the default). A handle uses the watch only when its path is exactly this.
   */
  netns?: string | null;
  /**
   * A /proc file listing that namespace's devices: `/proc/self/net/dev` (default: the namespace
   * of this process's main thread) or `/proc/<pid>/net/dev` of any process inside it.
   */
  devicesFile?: string;
  /** Poll period while someone waits (default 1 ms). */
  intervalMs?: number;
}

interface Waiter {
  name: string;
  resolve(): void;
}

/**
 * Why: deleting a link answers only after the kernel has waited out an RCU barrier for the
 * freed device (~10–15 ms on a 2-core VM, `netdev_run_todo`), though the link left the
 * namespace's list (name free, both veth ends gone, bridge port released under RTNL) at the
 * start of the call. `whenGone` resolves at that earlier point. The list is read by name:
 * callers must already hold the link's deletion in flight (see NetnsHandle.linkDel).
 */
export class LinkWatch {
  readonly netns: string | null;
  private readonly devicesFile: string;
  private readonly intervalMs: number;
  private readonly waiters = new Set<Waiter>();
  private timer?: NodeJS.Timeout;
  private reading = false;

  constructor(opts: LinkWatchOptions = {}) {
    this.netns = opts.netns ?? null;
    this.devicesFile = opts.devicesFile ?? '/proc/self/net/dev';
    this.intervalMs = opts.intervalMs ?? 1;
  }

  /** The link names now in the namespace; rejects when the file cannot be read. */
  async names(): Promise<Set<string>> {
    const text = await readFile(this.devicesFile, 'utf8');
    const out = new Set<string>();
    // Two header lines, then "  <name>: <counters>" (validated names have no ':').
    for (const line of text.split('\n').slice(2)) {
      const i = line.indexOf(':');
      if (i > 0) out.add(line.slice(0, i).trim());
    }
    return out;
  }

  /** True when `name` is in the namespace's list now. */
  async has(name: string): Promise<boolean> {
    return (await this.names()).has(name);
  }

  /**
   * Resolves once `name` is not in the list (checked first at the next tick). Never rejects:
   * an unreadable list just never resolves, so callers race it with the deletion itself.
   * `cancel()` stops waiting (the promise then stays pending).
   */
  whenGone(name: string): { gone: Promise<void>; cancel(): void } {
    let waiter!: Waiter;
    const gone = new Promise<void>((resolve) => {
      waiter = { name, resolve };
    });
    this.waiters.add(waiter);
    this.schedule();
    return { gone, cancel: () => void this.waiters.delete(waiter) };
  }

  /** Waiters now pending (for tests and diagnostics). */
  get pending(): number {
    return this.waiters.size;
  }

  private schedule(): void {
    if (this.timer || this.reading || this.waiters.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    // Waiting never keeps the process alive on its own (the deletion it races does).
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.reading = true;
    try {
      const names = await this.names();
      for (const w of this.waiters) {
        if (names.has(w.name)) continue;
        this.waiters.delete(w);
        w.resolve();
      }
    } catch {
      // Unreadable list: the racing deletion decides; keep polling while it runs.
    } finally {
      this.reading = false;
      this.schedule();
    }
  }
}
