// SQLite layout of the embedded store: opening with WAL + busy timeout, the schema, and
// every prepared statement. One file is shared by the daemon and short CNI processes.
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';

/** Schema version kept in PRAGMA user_version. */
export const SCHEMA_VERSION = 1;

const DDL = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (k, v) VALUES ('revision', 0), ('compact_revision', 0), ('next_lease', 1);
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, revision INTEGER NOT NULL, key TEXT NOT NULL,
  type INTEGER NOT NULL, value TEXT, prev_value TEXT
);
CREATE INDEX IF NOT EXISTS events_revision ON events (revision);
`;

/** Row shapes as SQLite returns them. */
export interface KvRow {
  key: string;
  value: string;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: number | null;
}
export interface EventRow {
  id: number;
  revision: number;
  key: string;
  type: number;
  value: string | null;
  prev_value: string | null;
}

/** Event type codes stored in events.type. */
export const EV_PUT = 0;
export const EV_DELETE = 1;

/** Open (creating if needed) the database file with WAL, busy timeout and the schema. */
export function openDatabase(file: string, busyTimeoutMs: number): Database.Database {
  const db = new Database(file, { timeout: busyTimeoutMs });
  try {
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a killed process loses nothing; only an OS crash may drop the last commits.
    db.pragma('synchronous = NORMAL');
    if (db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      db.transaction(() => {
        db.exec(DDL);
        const v = db.pragma('user_version', { simple: true }) as number;
        if (v > SCHEMA_VERSION) {
          throw new StoreError('bad-request', `store file ${file} has schema ${v}, newer than this tsoverlay (${SCHEMA_VERSION})`);
        }
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Every statement the store runs, prepared once per connection. */
export function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], number>('SELECT v FROM meta WHERE k = ?').pluck(),
    setMeta: db.prepare<[number, string]>('UPDATE meta SET v = ? WHERE k = ?'),
    getKv: db.prepare<[string], KvRow>('SELECT * FROM kv WHERE key = ?'),
    rangeAll: db.prepare<[number], KvRow>('SELECT * FROM kv ORDER BY key LIMIT ?'),
    rangeFrom: db.prepare<[string, number], KvRow>('SELECT * FROM kv WHERE key >= ? ORDER BY key LIMIT ?'),
    rangeBetween: db.prepare<[string, string, number], KvRow>(
      'SELECT * FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?',
    ),
    keysFrom: db.prepare<[string], KvRow>('SELECT * FROM kv WHERE key >= ?'),
    keysBetween: db.prepare<[string, string], KvRow>('SELECT * FROM kv WHERE key >= ? AND key < ?'),
    upsertKv: db.prepare<[string, string, number, number, number, number | null]>(
      'INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    deleteKv: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    keysOfLease: db.prepare<[number], KvRow>('SELECT * FROM kv WHERE lease = ? ORDER BY key'),
    insertEvent: db.prepare<[number, string, number, string | null, string | null]>(
      'INSERT INTO events (revision, key, type, value, prev_value) VALUES (?, ?, ?, ?, ?)',
    ),
    eventsAfter: db.prepare<[number, number, number], EventRow>(
      'SELECT * FROM events WHERE id > ? AND id <= ? AND revision >= ? ORDER BY id',
    ),
    maxEventId: db.prepare<[], number | null>('SELECT max(id) FROM events').pluck(),
    firstEventIdFrom: db.prepare<[number], number | null>('SELECT min(id) FROM events WHERE revision >= ?').pluck(),
    pruneEvents: db.prepare<[number]>('DELETE FROM events WHERE revision <= ?'),
    getLease: db.prepare<[number], { id: number; ttl: number; expires_at: number }>('SELECT * FROM leases WHERE id = ?'),
    insertLease: db.prepare<[number, number, number]>('INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)'),
    touchLease: db.prepare<[number, number]>('UPDATE leases SET expires_at = ? WHERE id = ?'),
    deleteLease: db.prepare<[number]>('DELETE FROM leases WHERE id = ?'),
    expiredLeases: db.prepare<[number], number>('SELECT id FROM leases WHERE expires_at <= ? ORDER BY id').pluck(),
    nextExpiry: db.prepare<[], number | null>('SELECT min(expires_at) FROM leases').pluck(),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/** Translate a better-sqlite3 error into a StoreError (busy/locked are retryable). */
export function sqliteError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown })?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || (typeof code === 'string' && code.startsWith('SQLITE_BUSY'))) {
    return new StoreError('unavailable', `${what}: store is busy (${msg})`, { cause: err, retryable: true });
  }
  if (code === 'SQLITE_CANTOPEN') return new StoreError('unavailable', `${what}: ${msg}`, { cause: err, retryable: false });
  if (err instanceof TypeError && /not open/.test(msg)) {
    return new StoreError('unavailable', `${what}: store is closed`, { cause: err, retryable: false });
  }
  return new StoreError('internal', `${what}: ${msg}`, { cause: err });
}
