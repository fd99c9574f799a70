// Fault injection around a real store: chosen transactions are applied and then reported as
// failed (what a client sees when etcd's leader dies after committing), or fail before being
// sent. Everything else goes straight to the wrapped store.
import { StoreError } from '../../store/errors.js';
import type { Compare, Op, Store, TxnResult } from '../../store/types.js';

export class FlakyStore implements Store {
  /** The next N transactions are applied, then throw a retryable timeout. */
  applyThenFail = 0;
  /** The next N transactions throw a retryable error without being applied. */
  failBefore = 0;
  txns = 0;

  constructor(private readonly inner: Store) {}

  get description(): string {
    return `flaky(${this.inner.description})`;
  }

  async txn(compares: Compare[], success: Op[], failure?: Op[]): Promise<TxnResult> {
    this.txns++;
    if (this.failBefore > 0) {
      this.failBefore--;
      throw new StoreError('unavailable', 'injected: not sent');
    }
    const r = await this.inner.txn(compares, success, failure);
    if (this.applyThenFail > 0) {
      this.applyThenFail--;
      throw new StoreError('timeout', 'injected: applied, but the answer was lost');
    }
    return r;
  }

  get: Store['get'] = (k) => this.inner.get(k);
  range: Store['range'] = (p, o) => this.inner.range(p, o);
  put: Store['put'] = (k, v, o) => this.inner.put(k, v, o);
  delete: Store['delete'] = (k) => this.inner.delete(k);
  lease: Store['lease'] = (t) => this.inner.lease(t);
  watch: Store['watch'] = (p, f, o) => this.inner.watch(p, f, o);
  revision: Store['revision'] = () => this.inner.revision();
  close: Store['close'] = () => this.inner.close();
}
