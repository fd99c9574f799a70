// Watches over the SQLite events log: one poller per connection reads new event rows
// (woken at once by local commits; other processes' commits wake it through inotify on the
// WAL file, with a PRAGMA data_version poll as the fallback)
// and hands each watcher its prefix's events in id order, exactly once.
import { watch as watchFile, type FSWatcher } from 'node:fs';
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { prefixEnd } from './range-end.js';
import { EV_PUT, type EventRow, type Statements } from './sqlite-schema.js';
import type { WatchEvent, WatchOptions, Watcher } from './types.js';

interface Entry {
  prefix: string;
  end: string | undefined;
  /** Smallest revision asked for. */
  fromRev: number;
  /** Last event row id examined. */
  lastId: number;
  /** Store revision up to which this watcher has seen everything. */
  seenRev: number;
  onEvent: (ev: WatchEvent) => void;
  onGap?: (err: Error) => void;
  cancelled: boolean;
}

/** Polls the events table for the watchers of one SqliteStore connection. */
export class SqliteWatchHub {
  private readonly entries = new Set<Entry>();
  private timer: NodeJS.Timeout | undefined;
  private walWatcher: FSWatcher | undefined;
  private dataVersion = -1;
  private poked = false;
  private woken = false;
  private closed = false;
  private readonly byRange: Database.Statement<[number, number, number, string, string], EventRow>;
  private readonly byStart: Database.Statement<[number, number, number, string], EventRow>;

  constructor(
    private readonly db: Database.Database,
    private readonly st: Statements,
    private readonly pollMs: number,
    /** The WAL file to watch for other processes' commits (none for in-memory databases). */
    private readonly walFile?: string,
  ) {
    this.byRange = db.prepare(
      'SELECT * FROM events WHERE id > ? AND id <= ? AND revision >= ? AND key >= ? AND key < ? ORDER BY id',
    );
    this.byStart = db.prepare('SELECT * FROM events WHERE id > ? AND id <= ? AND revision >= ? AND key >= ? ORDER BY id');
  }

  /** Register a watcher; its position is fixed synchronously, before any later write. */
  add(prefix: string, onEvent: (ev: WatchEvent) => void, opts: WatchOptions = {}): Watcher {
    const e: Entry = { prefix, end: prefixEnd(prefix), fromRev: 0, lastId: 0, seenRev: 0, onEvent, onGap: opts.onGap, cancelled: false };
    this.db.transaction(() => {
      const rev = this.st.getMeta.get('revision')!;
      const maxId = this.st.maxEventId.get() ?? 0;
      e.fromRev = opts.fromRevision ?? rev + 1;
      if (opts.fromRevision === undefined || opts.fromRevision > rev) {
        e.lastId = maxId;
        e.seenRev = Math.max(rev, e.fromRev - 1);
      } else {
        const first = this.st.firstEventIdFrom.get(e.fromRev);
        e.lastId = first == null ? maxId : first - 1;
        e.seenRev = e.fromRev - 1;
      }
    })();
    this.entries.add(e);
    this.ensureTimer();
    if (opts.fromRevision !== undefined) this.poke();
    return {
      cancel: async () => {
        e.cancelled = true;
        this.entries.delete(e);
        if (this.entries.size === 0) this.stopTimer();
      },
    };
  }

  /** A local commit happened: poll on the next turn instead of waiting for the timer. */
  poke(): void {
    if (this.poked || this.entries.size === 0 || this.closed) return;
    this.poked = true;
    setImmediate(() => this.poll(true));
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries) e.cancelled = true;
    this.entries.clear();
    this.stopTimer();
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.poll(false), this.pollMs);
    if (this.walFile) {
      try {
        this.walWatcher = watchFile(this.walFile, { persistent: false }, () => this.wake());
        this.walWatcher.on('error', () => this.walWatcher?.close());
      } catch {
        // no WAL file yet or no inotify: the poll timer alone
      }
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.walWatcher?.close();
    this.walWatcher = undefined;
  }

  /** Something wrote the WAL: poll soon, if the commit came from another connection. */
  private wake(): void {
    if (this.woken || this.entries.size === 0 || this.closed) return;
    this.woken = true;
    setImmediate(() => {
      this.woken = false;
      this.poll(false);
    });
  }

  private poll(fromPoke: boolean): void {
    if (fromPoke) this.poked = false;
    if (this.closed || this.entries.size === 0) return;
    let batches: Array<[Entry, EventRow[] | StoreError]>;
    try {
      const dv = this.db.pragma('data_version', { simple: true }) as number;
      if (!fromPoke && dv === this.dataVersion) return;
      batches = this.db.transaction(() => this.collect())();
      this.dataVersion = dv;
    } catch {
      return; // a busy or closing database: the next tick retries from the same position
    }
    this.deliver(batches);
  }

  /** Read, in one snapshot, every watcher's new events (or its gap). */
  private collect(): Array<[Entry, EventRow[] | StoreError]> {
    const rev = this.st.getMeta.get('revision')!;
    const compacted = this.st.getMeta.get('compact_revision')!;
    const maxId = this.st.maxEventId.get() ?? 0;
    const out: Array<[Entry, EventRow[] | StoreError]> = [];
    for (const e of this.entries) {
      const need = Math.max(e.fromRev, e.seenRev + 1);
      if (compacted >= need && e.seenRev < rev) {
        out.push([e, new StoreError('compacted', `watch ${e.prefix}: revision ${need} is compacted (oldest kept ${compacted + 1})`)]);
        continue;
      }
      if (maxId > e.lastId) {
        const rows =
          e.end === undefined
            ? this.byStart.all(e.lastId, maxId, e.fromRev, e.prefix)
            : this.byRange.all(e.lastId, maxId, e.fromRev, e.prefix, e.end);
        if (rows.length > 0) out.push([e, rows]);
        e.lastId = maxId;
      }
      e.seenRev = Math.max(e.seenRev, rev);
    }
    return out;
  }

  private deliver(batches: Array<[Entry, EventRow[] | StoreError]>): void {
    let thrown: unknown;
    for (const [e, rows] of batches) {
      if (rows instanceof StoreError) {
        e.cancelled = true;
        this.entries.delete(e);
        e.onGap?.(rows);
        continue;
      }
      for (const r of rows) {
        if (e.cancelled) break;
        const ev: WatchEvent = { type: r.type === EV_PUT ? 'put' : 'delete', key: r.key, value: r.value ?? '', revision: r.revision };
        if (r.prev_value !== null) ev.prevValue = r.prev_value;
        try {
          e.onEvent(ev);
        } catch (err) {
          thrown ??= err;
        }
      }
    }
    if (this.entries.size === 0) this.stopTimer();
    // A throwing callback must not stop delivery to the others, nor be swallowed.
    if (thrown !== undefined) queueMicrotask(() => { throw thrown; });
  }
}
