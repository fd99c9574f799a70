// One write revision of the SQLite store: applied inside a BEGIN IMMEDIATE transaction,
// it turns puts/deletes into kv rows plus event rows sharing one new revision.
import { StoreError } from './errors.js';
import { prefixEnd } from './range-end.js';
import { EV_DELETE, EV_PUT, type KvRow, type Statements } from './sqlite-schema.js';
import type { Compare, KeyValue, Op } from './types.js';

/** Convert a row to the public KeyValue shape. */
export function toKeyValue(r: KvRow): KeyValue {
  const kv: KeyValue = { key: r.key, value: r.value, createRevision: r.create_rev, modRevision: r.mod_rev, version: r.version };
  if (r.lease !== null) kv.lease = String(r.lease);
  return kv;
}

/** Parse a lease id argument ("123") into an integer, or throw bad-request. */
export function leaseNumber(lease: string | undefined): number | null {
  if (lease === undefined || lease === '' || lease === '0') return null;
  if (!/^[1-9][0-9]{0,15}$/.test(lease)) throw new StoreError('bad-request', `bad lease id "${lease}"`);
  return Number(lease);
}

/**
 * Accumulates the changes of one revision. Call only inside an immediate transaction;
 * `finish()` stores the new revision when anything changed and returns the store revision.
 */
export class WriteRevision {
  readonly rev: number;
  private changed = false;

  constructor(private readonly st: Statements) {
    this.rev = st.getMeta.get('revision')! + 1;
  }

  put(key: string, value: string, lease: number | null): void {
    if (lease !== null && !this.st.getLease.get(lease)) {
      throw new StoreError('lease-lost', `lease ${lease} not found (expired or revoked)`);
    }
    const old = this.st.getKv.get(key);
    const createRev = old ? old.create_rev : this.rev;
    const version = old ? old.version + 1 : 1;
    this.st.upsertKv.run(key, value, createRev, this.rev, version, lease);
    this.st.insertEvent.run(this.rev, key, EV_PUT, value, old ? old.value : null);
    this.changed = true;
  }

  delete(key: string): boolean {
    const old = this.st.getKv.get(key);
    if (!old) return false;
    this.removeRow(old);
    return true;
  }

  deletePrefix(prefix: string): number {
    const end = prefixEnd(prefix);
    const rows = end === undefined ? this.st.keysFrom.all(prefix) : this.st.keysBetween.all(prefix, end);
    rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const r of rows) this.removeRow(r);
    return rows.length;
  }

  /** Delete every key attached to a lease, and the lease. */
  dropLease(id: number): void {
    for (const r of this.st.keysOfLease.all(id)) this.removeRow(r);
    this.st.deleteLease.run(id);
  }

  apply(op: Op): void {
    switch (op.type) {
      case 'put':
        this.put(op.key, op.value, leaseNumber(op.lease));
        break;
      case 'delete':
        this.delete(op.key);
        break;
      case 'deletePrefix':
        this.deletePrefix(op.prefix);
        break;
      default:
        throw new StoreError('bad-request', `unknown op type ${JSON.stringify((op as { type?: unknown }).type)}`);
    }
  }

  /** Record the revision when something changed; returns the store revision now. */
  finish(): number {
    if (!this.changed) return this.rev - 1;
    this.st.setMeta.run(this.rev, 'revision');
    return this.rev;
  }

  private removeRow(old: KvRow): void {
    this.st.deleteKv.run(old.key);
    this.st.insertEvent.run(this.rev, old.key, EV_DELETE, null, old.value);
    this.changed = true;
  }
}

/** Evaluate one compare against the current row (etcd semantics: a missing key has zero revisions). */
export function holds(c: Compare, row: KvRow | undefined): boolean {
  if (c.target === 'value') {
    if (!row) return false; // etcd: a value compare on a missing key always fails
    return c.op === '==' ? row.value === c.value : row.value !== c.value;
  }
  const actual = !row ? 0 : c.target === 'createRevision' ? row.create_rev : c.target === 'modRevision' ? row.mod_rev : row.version;
  switch (c.op) {
    case '==':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case '<':
      return actual < c.value;
    case '>':
      return actual > c.value;
    default:
      throw new StoreError('bad-request', `unknown compare op ${JSON.stringify((c as { op?: unknown }).op)}`);
  }
}
