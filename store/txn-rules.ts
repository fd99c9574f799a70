// Transaction rules both backends enforce, so code that works on the embedded store also works
// on etcd: at most maxOps ops per branch (etcd's --max-txn-ops, default 128), and no key put
// twice, or put and deleted, in one branch (etcd: "duplicate key given in txn request").
import { StoreError } from './errors.js';
import { prefixEnd } from './range-end.js';
import type { Op } from './types.js';

/** etcd's default --max-txn-ops. */
export const DEFAULT_MAX_TXN_OPS = 128;

/** Throw bad-request when one branch of a txn breaks the shared rules. */
export function checkBranch(ops: Op[], maxOps: number): void {
  if (ops.length > maxOps) throw new StoreError('bad-request', `too many operations in txn: ${ops.length} > ${maxOps}`);
  const puts = new Set<string>();
  const deleted: Array<[string, string | undefined]> = [];
  for (const op of ops) {
    if (op.type === 'put') {
      if (puts.has(op.key)) throw new StoreError('bad-request', `duplicate key in txn: ${op.key}`);
      puts.add(op.key);
    } else if (op.type === 'delete') {
      deleted.push([op.key, `${op.key}\0`]);
    } else if (op.type === 'deletePrefix') {
      deleted.push([op.prefix, prefixEnd(op.prefix)]);
    }
  }
  for (const key of puts) {
    for (const [from, to] of deleted) {
      if (key >= from && (to === undefined || key < to)) throw new StoreError('bad-request', `duplicate key in txn: ${key} is put and deleted`);
    }
  }
}
