// Argument checks both store backends make before touching their engine, so a bad call fails
// the same way (bad-request, same message) on the embedded store and on etcd.
import { StoreError } from './errors.js';
import type { Op, WatchOptions } from './types.js';

/** A key is a non-empty string without NUL (SQLite text and etcd bytes must agree). */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key.length === 0) throw new StoreError('bad-request', 'key must be a non-empty string');
  if (key.includes('\0')) throw new StoreError('bad-request', `key contains a NUL character: ${JSON.stringify(key.slice(0, 60))}`);
}

/** Values are strings (the records are JSON text). */
export function checkValue(value: unknown): void {
  if (typeof value !== 'string') throw new StoreError('bad-request', 'value must be a string');
}

/** A prefix for range/watch/deletePrefix; the empty prefix means "everything". */
export function checkPrefix(prefix: unknown, what: 'range' | 'watch' | 'deletePrefix'): void {
  if (typeof prefix !== 'string') {
    throw new StoreError('bad-request', what === 'deletePrefix' ? 'deletePrefix needs a string prefix' : `${what} prefix must be a string`);
  }
}

/** One txn operation's fields (the branch rules are in txn-rules.ts). */
export function checkOp(op: Op): void {
  if (op.type === 'deletePrefix') return checkPrefix(op.prefix, 'deletePrefix');
  if (op.type !== 'put' && op.type !== 'delete') {
    throw new StoreError('bad-request', `unknown op type ${JSON.stringify((op as { type?: unknown }).type)}`);
  }
  checkKey(op.key);
  if (op.type === 'put') checkValue(op.value);
}

/** Lease TTLs are whole seconds, as etcd grants them. */
export function checkLeaseTtl(ttlSeconds: unknown): void {
  if (!Number.isInteger(ttlSeconds) || (ttlSeconds as number) < 1) {
    throw new StoreError('bad-request', `lease ttl must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
}

/** A watch's prefix and its optional starting revision. */
export function checkWatch(prefix: unknown, opts: WatchOptions): void {
  checkPrefix(prefix, 'watch');
  if (opts.fromRevision !== undefined && !(Number.isInteger(opts.fromRevision) && opts.fromRevision >= 1)) {
    throw new StoreError('bad-request', `watch fromRevision must be an integer >= 1, got ${opts.fromRevision}`);
  }
}
