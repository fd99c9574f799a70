// The embedded store: one SQLite file (WAL, busy timeout) shared by the daemon and the CNI
// executables of a host. Global revision counter, leases with expiry, watch by revision.
// Limits: one host only (a local file); watch latency across processes is one poll period.
import type Database from 'better-sqlite3';
import { checkKey, checkLeaseTtl, checkOp, checkPrefix, checkValue, checkWatch } from './args.js';
import { StoreError } from './errors.js';
import { KeptLease } from './lease-keeper.js';
import { prefixEnd } from './range-end.js';
import { DEFAULT_MAX_TXN_OPS, checkBranch } from './txn-rules.js';
import { openDatabase, prepareStatements, sqliteError, type Statements } from './sqlite-schema.js';
import { SqliteWatchHub } from './sqlite-watch.js';
import { WriteRevision, holds, leaseNumber, toKeyValue } from './sqlite-write.js';
import type { Compare, KeyValue, Lease, Op, RangeOptions, RangeResult, Store, TxnResult, WatchEvent, WatchOptions, Watcher } from './types.js';

export interface SqliteStoreOptions {
  /** Wait this long for another process's write lock before failing retryable (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Fallback poll period for other processes' commits (default 20 ms); local commits, and other
   * processes' commits seen through inotify on the WAL file, wake watchers at once.
   */
  pollMs?: number;
  /** How often this process looks for expired leases (default 250 ms). */
  sweepMs?: number;
  /** Keep the events of this many recent revisions for watch resumption (default 100000). */
  retainRevisions?: number;
  /** Most ops per txn branch (default 128, etcd's default, so code stays portable). */
  maxTxnOps?: number;
}

/** A Store over one SQLite file. Construct with SqliteStore.open(). */
export class SqliteStore implements Store {
  readonly description: string;
  private readonly st: Statements;
  private readonly hub: SqliteWatchHub;
  private readonly sweeper: NodeJS.Timeout;
  private readonly leases = new Set<KeptLease>();
  private readonly retain: number;
  private readonly maxTxnOps: number;
  private closed = false;

  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    opts: SqliteStoreOptions,
  ) {
    this.description = `sqlite://${file}`;
    this.st = prepareStatements(db);
    this.hub = new SqliteWatchHub(db, this.st, opts.pollMs ?? 20, `${file}-wal`);
    this.retain = opts.retainRevisions ?? 100_000;
    this.maxTxnOps = opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.sweeper = setInterval(() => this.sweep(), opts.sweepMs ?? 250);
    this.sweeper.unref();
  }

  /** Open (creating) the store file; its directory must exist. */
  static open(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
    try {
      return new SqliteStore(openDatabase(file, opts.busyTimeoutMs ?? 5000), file, opts);
    } catch (err) {
      throw sqliteError(err, `open ${file}`);
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    return this.read('get', () => {
      const row = this.st.getKv.get(key);
      return row ? toKeyValue(row) : undefined;
    });
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    checkPrefix(prefix, 'range');
    const limit = opts.limit && opts.limit > 0 ? opts.limit : -1;
    return this.read('range', () => {
      const end = prefixEnd(prefix);
      const rows =
        prefix === '' ? this.st.rangeAll.all(limit) : end === undefined ? this.st.rangeFrom.all(prefix, limit) : this.st.rangeBetween.all(prefix, end, limit);
      return { kvs: rows.map(toKeyValue), revision: this.st.getMeta.get('revision')! };
    });
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    checkKey(key);
    checkValue(value);
    const lease = leaseNumber(opts.lease);
    return this.write('put', (w) => w.put(key, value, lease));
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    let existed = false;
    await this.write('delete', (w) => {
      existed = w.delete(key);
    });
    return existed;
  }

  async txn(compares: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    for (const c of compares) checkKey(c.key);
    for (const op of [...success, ...failure]) checkOp(op);
    checkBranch(success, this.maxTxnOps);
    checkBranch(failure, this.maxTxnOps);
    let succeeded = false;
    const revision = await this.write('txn', (w) => {
      succeeded = compares.every((c) => holds(c, this.st.getKv.get(c.key)));
      for (const op of succeeded ? success : failure) w.apply(op);
    });
    return { succeeded, revision };
  }

  async lease(ttlSeconds: number): Promise<Lease> {
    checkLeaseTtl(ttlSeconds);
    const id = this.tx('lease grant', () => {
      const n = this.st.getMeta.get('next_lease')!;
      this.st.setMeta.run(n + 1, 'next_lease');
      this.st.insertLease.run(n, ttlSeconds, Date.now() + ttlSeconds * 1000);
      return String(n);
    });
    const lease = new KeptLease(id, ttlSeconds, { refresh: (i) => this.refreshLease(i), revoke: (i) => this.revokeLease(i) }, (l) =>
      this.leases.delete(l),
    );
    this.leases.add(lease);
    return lease;
  }

  async watch(prefix: string, onEvent: (ev: WatchEvent) => void, opts: WatchOptions = {}): Promise<Watcher> {
    checkWatch(prefix, opts);
    this.ensureOpen();
    try {
      return this.hub.add(prefix, onEvent, opts);
    } catch (err) {
      throw sqliteError(err, 'watch');
    }
  }

  async revision(): Promise<number> {
    return this.read('revision', () => this.st.getMeta.get('revision')!);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const l of this.leases) l.stop();
    this.leases.clear();
    this.hub.close();
    this.db.close();
  }

  /** Delete the keys of every expired lease (any process may do this for any lease). */
  expireLeases(): void {
    this.tx('lease expiry', () => this.expireIn());
  }

  private async refreshLease(id: string): Promise<boolean> {
    return this.tx('lease keep-alive', () => {
      this.expireIn();
      const n = Number(id);
      const row = this.st.getLease.get(n);
      if (!row) return false;
      this.st.touchLease.run(Date.now() + row.ttl * 1000, n);
      return true;
    });
  }

  private async revokeLease(id: string): Promise<void> {
    await this.write('lease revoke', (w) => w.dropLease(Number(id)));
  }

  /** Inside a write transaction: drop expired leases and their keys (as one revision). */
  private expireIn(): void {
    const next = this.st.nextExpiry.get();
    if (next == null || next > Date.now()) return;
    const w = new WriteRevision(this.st);
    for (const id of this.st.expiredLeases.all(Date.now())) w.dropLease(id);
    if (w.finish() === w.rev) this.hub.poke();
  }

  private sweep(): void {
    if (this.closed) return;
    try {
      const next = this.st.nextExpiry.get();
      if (next != null && next <= Date.now()) this.expireLeases();
    } catch {
      // busy: the next sweep, or any writer, expires them
    }
  }

  /** Run fn as one new revision (after expiring leases); returns the store revision. */
  private write(what: string, fn: (w: WriteRevision) => void): Promise<number> {
    const rev = this.tx(what, () => {
      this.expireIn();
      const w = new WriteRevision(this.st);
      fn(w);
      const r = w.finish();
      if (r === w.rev && r % 1000 === 0) this.prune(r);
      return r;
    });
    this.hub.poke();
    return Promise.resolve(rev);
  }

  private prune(rev: number): void {
    const upTo = rev - this.retain;
    if (upTo <= this.st.getMeta.get('compact_revision')!) return;
    this.st.pruneEvents.run(upTo);
    this.st.setMeta.run(upTo, 'compact_revision');
  }

  /** Reads expire leases first when one is due, so a dead granter's keys are never served. */
  private read<T>(what: string, fn: () => T): Promise<T> {
    this.ensureOpen();
    try {
      const next = this.st.nextExpiry.get();
      if (next != null && next <= Date.now()) this.expireLeases();
      return Promise.resolve(this.db.transaction(fn)());
    } catch (err) {
      throw sqliteError(err, what);
    }
  }

  private tx<T>(what: string, fn: () => T): T {
    this.ensureOpen();
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw sqliteError(err, what);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('unavailable', `${this.description} is closed`, { retryable: false });
  }
}


