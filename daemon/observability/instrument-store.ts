// A Store that times every call of another Store and reports it to a StoreRecorder (latency,
// errors by code, watch events, gaps, and the delay from this process's own writes to their watch
// events). Behaviour is unchanged: values, errors and ordering pass through untouched.
// Limit: the watch delay is measured only for put/txn made through this wrapper (a delete returns
// no revision, and another process's write time is unknown).
import { PREFIX } from '../../store/keys.js';
import type { Compare, KeyValue, Lease, Op, RangeOptions, RangeResult, Store, TxnResult, WatchEvent, WatchOptions, Watcher } from '../../store/types.js';
import type { StoreRecorder } from './metrics.js';

/** Most pending write revisions remembered for the watch delay (oldest dropped first). */
const MAX_PENDING = 4096;

/** The top-level key area of a key or prefix ('endpoints', 'ipam', 'skydns', …), a bounded label. */
export function keyArea(key: string): string {
  if (key.startsWith(PREFIX)) {
    const rest = key.slice(PREFIX.length);
    const slash = rest.indexOf('/');
    return (slash < 0 ? rest : rest.slice(0, slash)) || 'all';
  }
  if (key.startsWith('/skydns/')) return 'skydns';
  return 'other';
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' && c.length > 0 ? c : 'unknown';
}

/** Wrap `store` so each call is timed into `rec`. close() closes the inner store. */
export function instrumentStore(store: Store, rec: StoreRecorder): Store {
  return new InstrumentedStore(store, rec);
}

class InstrumentedStore implements Store {
  /** Revision → time (ms, monotonic) at which this process's write of it completed. */
  private readonly pending = new Map<number, number>();
  private watches = 0;

  constructor(
    private readonly inner: Store,
    private readonly rec: StoreRecorder,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      const out = await fn();
      this.rec.request(op, (performance.now() - start) / 1000);
      return out;
    } catch (err) {
      this.rec.request(op, (performance.now() - start) / 1000, codeOf(err));
      throw err;
    }
  }

  private wrote(revision: number): void {
    if (this.watches === 0) return;
    this.pending.set(revision, performance.now());
    if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.timed('get', () => this.inner.get(key));
  }

  range(prefix: string, opts?: RangeOptions): Promise<RangeResult> {
    return this.timed('range', () => this.inner.range(prefix, opts));
  }

  async put(key: string, value: string, opts?: { lease?: string }): Promise<number> {
    const rev = await this.timed('put', () => this.inner.put(key, value, opts));
    this.wrote(rev);
    return rev;
  }

  delete(key: string): Promise<boolean> {
    return this.timed('delete', () => this.inner.delete(key));
  }

  async txn(compares: Compare[], success: Op[], failure?: Op[]): Promise<TxnResult> {
    const r = await this.timed('txn', () => this.inner.txn(compares, success, failure));
    if ((r.succeeded ? success : (failure ?? [])).length > 0) this.wrote(r.revision);
    return r;
  }

  lease(ttlSeconds: number): Promise<Lease> {
    return this.timed('lease', () => this.inner.lease(ttlSeconds));
  }

  async watch(prefix: string, onEvent: (ev: WatchEvent) => void, opts?: WatchOptions): Promise<Watcher> {
    const area = keyArea(prefix);
    const deliver = (ev: WatchEvent) => {
      this.rec.watchEvent(area);
      const at = this.pending.get(ev.revision);
      if (at !== undefined) {
        this.pending.delete(ev.revision);
        this.rec.watchDelay((performance.now() - at) / 1000);
      }
      onEvent(ev);
    };
    const onGap = (err: Error) => {
      this.rec.watchGap(area);
      opts?.onGap?.(err);
    };
    const w = await this.timed('watch', () => this.inner.watch(prefix, deliver, { ...opts, onGap }));
    this.watches++;
    let cancelled = false;
    return {
      cancel: async () => {
        if (!cancelled) {
          cancelled = true;
          if (--this.watches === 0) this.pending.clear();
        }
        await w.cancel();
      },
    };
  }

  revision(): Promise<number> {
    return this.timed('revision', () => this.inner.revision());
  }

  close(): Promise<void> {
    this.pending.clear();
    return this.inner.close();
  }
}
