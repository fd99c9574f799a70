// Following store prefixes: read them once (load), apply what is marked dirty, then watch them
// from the next revision (start). The base of the daemon's link and service controllers; a
// subclass keeps its own view of the records and says how to apply one dirty key.
import type { Store, Watcher } from './types.js';

/** One prefix followed: its records go to `put`/`delete`, which mark what must be re-applied. */
export interface FollowedPrefix {
  prefix: string;
  put(key: string, value: string): void;
  delete(key: string): void;
}

/** Load, apply and follow records of several prefixes; changes are applied one flush at a time. */
export abstract class StoreFollower {
  /** Keys (the subclass's choice) to apply at the next flush. */
  protected readonly dirty = new Set<string>();
  private watchers: Watcher[] = [];
  private flushing: Promise<void> = Promise.resolve();

  protected constructor(
    protected readonly store: Store,
    /** A watch fell behind the store's history: what was missed is not re-read. */
    private readonly onGap: (err: Error) => void,
  ) {}

  /** The prefixes to follow, each with the handlers that update the subclass's view. */
  protected abstract prefixes(): FollowedPrefix[];

  /** Apply one dirty key (errors are the subclass's to report). */
  protected abstract syncOne(key: string): Promise<void>;

  /** Read every prefix and apply, once. Resolves with each prefix's next revision to follow from. */
  async load(): Promise<Map<string, number>> {
    const from = new Map<string, number>();
    for (const p of this.prefixes()) {
      const r = await this.store.range(p.prefix);
      for (const kv of r.kvs) p.put(kv.key, kv.value);
      // Each prefix from its own read: a change between two reads is replayed, never skipped.
      from.set(p.prefix, r.revision + 1);
    }
    await this.flush();
    return from;
  }

  /** Load, apply, then follow changes. Resolves once the first state is applied. */
  async start(): Promise<void> {
    const from = await this.load();
    for (const p of this.prefixes()) {
      const watcher = await this.store.watch(p.prefix, (ev) => {
        if (ev.type === 'put') p.put(ev.key, ev.value);
        else p.delete(ev.key);
        void this.flush();
      }, { fromRevision: from.get(p.prefix)!, onGap: this.onGap });
      this.watchers.push(watcher);
    }
  }

  /** Stop following the store (what was applied stays). */
  async stop(): Promise<void> {
    await Promise.all(this.watchers.splice(0).map((w) => w.cancel()));
    await this.flushing;
  }

  /** Resolves when every change seen so far has been applied. */
  idle(): Promise<void> {
    return this.flushing;
  }

  private flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const todo = [...this.dirty];
      this.dirty.clear();
      for (const key of todo) await this.syncOne(key);
    });
    return this.flushing;
  }
}
