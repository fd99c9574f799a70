// A Lease handle shared by both backends: the backend supplies "refresh once" and
// "revoke"; this keeps the lease alive on a timer and reports when it is lost.
import { StoreError } from './errors.js';
import type { Lease } from './types.js';

/** What a backend provides to keep one lease alive. */
export interface LeaseOps {
  /** Extend the lease by its TTL; resolve false when it no longer exists. */
  refresh(id: string): Promise<boolean>;
  revoke(id: string): Promise<void>;
}

/**
 * A granted lease. keepAlive() refreshes every ttl/3 (at least every 100 ms apart); a refresh
 * that finds the lease gone, or that keeps failing until the TTL has passed, reports lost.
 */
export class KeptLease implements Lease {
  private timer: NodeJS.Timeout | undefined;
  private readonly lostCbs: Array<(err: Error) => void> = [];
  private lost = false;
  private lastOk = Date.now();
  private inFlight = false;

  constructor(
    readonly id: string,
    readonly ttlSeconds: number,
    private readonly ops: LeaseOps,
    private readonly onDone: (lease: KeptLease) => void = () => {},
  ) {}

  keepAlive(): void {
    if (this.timer || this.lost) return;
    const every = Math.max(100, Math.floor((this.ttlSeconds * 1000) / 3));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    void this.tick();
  }

  async revoke(): Promise<void> {
    this.stop();
    await this.ops.revoke(this.id);
    this.onDone(this);
  }

  release(): void {
    this.stop();
    this.onDone(this);
  }

  onLost(cb: (err: Error) => void): void {
    this.lostCbs.push(cb);
  }

  /** Stop the timer without reporting (store closing). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.inFlight || this.lost) return;
    this.inFlight = true;
    try {
      if (await this.ops.refresh(this.id)) {
        this.lastOk = Date.now();
        return;
      }
      this.markLost(new StoreError('lease-lost', `lease ${this.id} expired or was revoked`));
    } catch (err) {
      // Transient failures are tolerated until the TTL has certainly run out.
      if (Date.now() - this.lastOk > this.ttlSeconds * 1000) {
        this.markLost(new StoreError('lease-lost', `lease ${this.id} not refreshed within its ttl: ${(err as Error).message}`, { cause: err }));
      }
    } finally {
      this.inFlight = false;
    }
  }

  private markLost(err: Error): void {
    if (this.lost || !this.timer) return;
    this.lost = true;
    this.stop();
    this.onDone(this);
    for (const cb of this.lostCbs) cb(err);
  }
}
