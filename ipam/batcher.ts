// Group commit: address CASes issued in the same event-loop turn by one allocator go to the
// store as one transaction (all compares, all puts). If any compare fails, nothing applied and
// each CAS is re-sent alone, so the outcome per address is exactly that of a lone CAS.
import type { Compare, Op, Store } from '../store/types.js';
import { type RetryPolicy, retryStore } from './retry.js';

/** One address CAS: its own compares and puts, plus an optional best-effort put (the cursor). */
export interface CasItem {
  compares: Compare[];
  ops: Op[];
  /** Written once per transaction (last item wins); never compared. */
  hint?: Op & { type: 'put' };
}

interface Waiting {
  item: CasItem;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

/** Batches CasItems that share one guard compare (the pool's incarnation). */
export class TxnBatcher {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly guard: Compare,
    private readonly retry: RetryPolicy,
    /** etcd refuses more than 128 ops per txn by default; 3 per item keeps well inside. */
    private readonly maxItems = 32,
  ) {}

  /** Resolves true when the item's compares held and its ops were applied. */
  submit(item: CasItem): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (const chunk of chunks(all, this.maxItems)) void this.run(chunk);
  }

  private async run(chunk: Waiting[]): Promise<void> {
    if (chunk.length === 1) return this.alone(chunk[0]!);
    try {
      const hint = chunk.map((w) => w.item.hint).filter((h) => h !== undefined).pop();
      const compares = [this.guard, ...chunk.flatMap((w) => w.item.compares)];
      const ops = [...chunk.flatMap((w) => w.item.ops), ...(hint ? [hint] : [])];
      // Re-sending the same batch is safe: if an earlier try applied, its compares now fail.
      const r = await retryStore(() => this.store.txn(compares, ops), this.retry);
      if (r.succeeded) {
        for (const w of chunk) w.resolve(true);
        return;
      }
    } catch (err) {
      for (const w of chunk) w.reject(err);
      return;
    }
    await Promise.all(chunk.map((w) => this.alone(w)));
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      const ops = w.item.hint ? [...w.item.ops, w.item.hint] : w.item.ops;
      const r = await retryStore(() => this.store.txn([this.guard, ...w.item.compares], ops), this.retry);
      w.resolve(r.succeeded);
    } catch (err) {
      w.reject(err);
    }
  }
}

// Split into transactions of at most max items in which no key is written twice (etcd
// refuses a txn that puts one key twice, e.g. two concurrent requests of the same owner).
function chunks(all: Waiting[], max: number): Waiting[][] {
  const out: { items: Waiting[]; keys: Set<string> }[] = [];
  for (const w of all) {
    const keys = w.item.ops.map((o) => (o.type === 'deletePrefix' ? o.prefix : o.key));
    let c = out.find((x) => x.items.length < max && keys.every((k) => !x.keys.has(k)));
    if (!c) out.push((c = { items: [], keys: new Set() }));
    c.items.push(w);
    for (const k of keys) c.keys.add(k);
  }
  return out.map((c) => c.items);
}
