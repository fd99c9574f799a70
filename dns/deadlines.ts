// Deadlines for many waiters that all wait the same time: a FIFO (insertion order is deadline
// order) with one timer for the lot, instead of a timer per query; expiry may be late by up to a
// tenth of the delay (at most 50 ms), never early. Entries are never removed
// early: a waiter that finished is skipped when its turn comes (its token no longer matches).

/** Something that can time out; `token` tells which of its waits an entry belongs to. */
export interface Expiring {
  expire(token: number): void;
}

/** One fixed delay, one timer, O(1) add; `expire(token)` is called for every entry due. */
export class DeadlineQueue {
  private waiters: (Expiring | undefined)[] = [];
  private tokens: number[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly delayMs: number) {}

  /** Call `w.expire(token)` delayMs from now (the waiter ignores tokens it no longer holds). */
  add(w: Expiring, token: number): void {
    this.waiters.push(w);
    this.tokens.push(token);
    this.deadlines.push(performance.now() + this.delayMs);
    if (!this.timer) this.arm();
  }

  /** Expire every entry now (shutdown). */
  expireAll(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const [ws, ts, from] = [this.waiters, this.tokens, this.head];
    this.reset();
    for (let i = from; i < ws.length; i++) ws[i]!.expire(ts[i]!);
  }

  private reset(): void {
    this.waiters = [];
    this.tokens = [];
    this.deadlines = [];
    this.head = 0;
  }

  /** Waits at least a tenth of the delay (≤ 50 ms): under load one wake-up expires a batch. */
  private arm(): void {
    const wait = Math.max(Math.min(50, Math.ceil(this.delayMs / 10)), Math.ceil(this.deadlines[this.head]! - performance.now()));
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.waiters.length && this.deadlines[this.head]! <= now) {
      const w = this.waiters[this.head]!;
      const token = this.tokens[this.head]!;
      this.waiters[this.head++] = undefined;
      w.expire(token);
    }
    if (this.head >= this.waiters.length) this.reset();
    else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.tokens = this.tokens.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    if (this.head < this.waiters.length && !this.timer) this.arm();
  }
}
