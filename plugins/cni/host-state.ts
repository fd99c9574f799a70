// Where the daemon and the standalone CNI executables of a host meet: a directory (the SQLite
// store's; for etcd stores the state dir) holding the host id everything records under
// (`host-id`), the daemon's firewall backend (`firewall-backend`) and the start-up lock
// (`host.lock`). Node built-ins only, plus better-sqlite3 when a lock is taken.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { BACKEND_KINDS, type BackendKind } from '../../proxy/backend.js';
import { CodedError } from '../../store/errors.js';
import { parseStoreUrl } from '../../store/url.js';

/** The daemon's default `--state-dir` (DESIGN.md). */
export const DEFAULT_STATE_DIR = '/var/lib/tsoverlay';
/** The file naming the host id, in the meeting directory. */
export const HOST_ID_FILE = 'host-id';
/** The file naming the daemon's firewall backend (iptables|nft), in the meeting directory. */
export const FIREWALL_BACKEND_FILE = 'firewall-backend';
/** The start-up lock file, in the meeting directory. */
export const HOST_LOCK_FILE = 'host.lock';

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

type HostStateCode = 'host-id-mismatch' | 'host-lock-busy';

/** A host-state failure (a host id conflict, a lock not obtained in time). */
export class HostStateError extends CodedError<HostStateCode> {
  constructor(code: HostStateCode, message: string) {
    super('HostStateError', code, code === 'host-lock-busy' ? 'unavailable' : 'conflict', message, code === 'host-lock-busy');
  }
}

/** The host name as a host id (the daemon's `--host-id` default): other characters become '-'. */
export function defaultHostId(name: string = hostname()): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[._-]+/, '').slice(0, 63) || 'localhost';
}

/**
 * The meeting directory of a store URL as the executables see it: the SQLite file's directory,
 * else the default state dir (an etcd-backed daemon with another --state-dir is not found).
 */
export function stateDirOfStore(storeUrl: string): string {
  try {
    const t = parseStoreUrl(storeUrl);
    return t.kind === 'sqlite' ? dirname(t.file) : DEFAULT_STATE_DIR;
  } catch {
    return DEFAULT_STATE_DIR; // the handler refuses the URL itself
  }
}

/** The daemon's meeting directory: its SQLite store's directory, else its state dir. */
export function daemonStateDir(cfg: { store: string; stateDir: string }): string {
  const t = parseStoreUrl(cfg.store);
  return t.kind === 'sqlite' ? dirname(t.file) : cfg.stateDir;
}

/** The host id recorded in `dir`, or undefined (no file, unreadable, or not a valid id). */
export function readHostId(dir: string): string | undefined {
  try {
    const id = readFileSync(join(dir, HOST_ID_FILE), 'utf8').trim();
    return HOST_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Write `value` to a new temporary file for `name` in `dir` (synced), returning its path. */
function tempWith(dir: string, name: string, value: string): string {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, `${value}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

/**
 * Record `id` in `dir` unless an id is recorded already, atomically (hard link of a complete
 * temporary file: never clobbers, never shows a partial file). Returns the id now recorded.
 */
export function claimHostId(dir: string, id: string): string {
  const existing = readHostId(dir);
  if (existing) return existing;
  const tmp = tempWith(dir, HOST_ID_FILE, id);
  try {
    linkSync(tmp, join(dir, HOST_ID_FILE));
    return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readHostId(dir) ?? id;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The daemon's check at start-up: `id` is recorded in `dir` (written atomically when absent).
 * Another id there means this host's state (links, records, port reservations) was made under
 * that id — by CNI executables that ran before any daemon, or a daemon with another --host-id —
 * and starting would prune it as unexplained: refused, naming both ids and the file.
 */
export function adoptHostId(dir: string, id: string): void {
  const recorded = claimHostId(dir, id);
  if (recorded === id) return;
  throw new HostStateError(
    'host-id-mismatch',
    `--host-id "${id}" differs from the host id "${recorded}" recorded in ${join(dir, HOST_ID_FILE)} (this host's containers and records were made under it): ` +
      `start with --host-id ${recorded}, or delete the file once nothing is recorded under "${recorded}"`,
  );
}

/**
 * The firewall backend the daemon recorded in `dir`, or undefined (no file, unreadable, or not
 * a backend name). The standalone executables program this one; nothing recorded: iptables.
 */
export function readFirewallBackend(dir: string): BackendKind | undefined {
  try {
    const kind = readFileSync(join(dir, FIREWALL_BACKEND_FILE), 'utf8').trim();
    return (BACKEND_KINDS as readonly string[]).includes(kind) ? (kind as BackendKind) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Record the daemon's firewall backend in `dir`, replacing what was there, atomically (rename of
 * a complete temporary file: a reader sees the old choice or the new one, never a partial file).
 */
export function recordFirewallBackend(dir: string, kind: BackendKind): void {
  if (!(BACKEND_KINDS as readonly string[]).includes(kind)) throw new TypeError(`firewall backend ${JSON.stringify(kind)} is not one of ${BACKEND_KINDS.join(', ')}`);
  const tmp = tempWith(dir, FIREWALL_BACKEND_FILE, kind);
  try {
    renameSync(tmp, join(dir, FIREWALL_BACKEND_FILE));
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * The start-up lock: one SQLite transaction on `<dir>/host.lock`. Standalone executables hold it
 * shared for their whole call; a starting daemon holds it exclusive until its socket answers, so
 * its start-up reconcile never runs beside a standalone call. The kernel drops it when the
 * process dies. A waiting exclusive taker holds back new shared ones (no starvation).
 */
export class HostStateLock {
  private constructor(private readonly db: Database.Database) {}

  /** Take the lock within `timeoutMs`, else HostStateError host-lock-busy (CNI 11). */
  static async acquire(dir: string, mode: 'shared' | 'exclusive', timeoutMs: number): Promise<HostStateLock> {
    const { default: Sqlite } = await import('better-sqlite3');
    const path = join(dir, HOST_LOCK_FILE);
    const db = new Sqlite(path, { timeout: timeoutMs });
    try {
      db.exec(HOLD_SQL[mode]);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      throw lockBusy(path, mode, timeoutMs);
    }
    return new HostStateLock(db);
  }

  release(): void {
    try {
      this.db.exec('COMMIT');
    } finally {
      this.db.close();
    }
  }

  /**
   * As `acquire`, but the wait happens in a worker thread that then holds the lock, so the
   * caller's event loop keeps running (a daemon waiting up to a minute for standalone calls
   * still logs, answers signals and flushes its output). SQLite's busy wait keeps the lock's
   * PENDING state meanwhile, so new shared holders queue behind the waiter as with `acquire`.
   * `onWaiting` is called once the worker found the lock taken and is in that wait (not before:
   * a shared taker arriving earlier is still let in, so "waiting" is only said when it holds).
   */
  static async acquireOffThread(dir: string, mode: 'shared' | 'exclusive', timeoutMs: number, onWaiting?: () => void): Promise<HeldLock> {
    const path = join(dir, HOST_LOCK_FILE);
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(LOCK_WORKER, { eval: true, workerData: { sqlite, path, sql: HOLD_SQL[mode], timeoutMs } });
    worker.unref();
    let settled = false;
    const answer = await new Promise<{ ok: boolean; busy?: boolean; error?: string }>((resolve) => {
      worker.on('message', (m: { waiting?: boolean; ok: boolean }) => {
        if (!m.waiting) resolve(m);
        else if (onWaiting && mode === 'exclusive') void untilSharedRefused(dir, () => settled).then(onWaiting);
        else onWaiting?.();
      });
      worker.once('error', (err) => resolve({ ok: false, error: err.message }));
      worker.once('exit', (code) => resolve({ ok: false, error: `lock worker exited (${code})` }));
    });
    settled = true;
    if (!answer.ok) {
      await worker.terminate();
      if (answer.busy) throw lockBusy(path, mode, timeoutMs);
      throw new Error(`${path}: ${answer.error}`);
    }
    return { release: () => worker.postMessage('release') };
  }
}

/**
 * Resolves once a new shared taker is refused (the exclusive waiter holds PENDING: its busy wait
 * started), or the wait is over, or after 2 s. The worker says "waiting" just before that wait
 * begins; a probe that still gets in lets go at once.
 */
async function untilSharedRefused(dir: string, over: () => boolean): Promise<void> {
  for (const until = Date.now() + 2_000; Date.now() < until && !over(); await new Promise((r) => setTimeout(r, 2))) {
    try {
      (await HostStateLock.acquire(dir, 'shared', 0)).release();
    } catch {
      return;
    }
  }
}

/** What takes the lock in each mode: a read inside a transaction holds SHARED until COMMIT. */
const HOLD_SQL = { exclusive: 'BEGIN EXCLUSIVE', shared: 'BEGIN; SELECT count(*) FROM sqlite_master' } as const;

/** The lock was not obtained in time (CNI 11), naming who holds it. */
function lockBusy(path: string, mode: 'shared' | 'exclusive', timeoutMs: number): HostStateError {
  return new HostStateError('host-lock-busy', `${path}: not obtained within ${timeoutMs} ms (${mode === 'shared' ? 'the tsoverlay daemon is starting' : 'standalone CNI calls are running'})`);
}

/** A lock held until `release()`. */
export interface HeldLock {
  release(): void;
}

// The worker of `acquireOffThread` (CommonJS, eval'd): take the lock (saying when it has to wait),
// say so, hold it until told to release (or until the process ends, when the kernel drops it).
const LOCK_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const Sqlite = require(w.sqlite);
let db;
try {
  db = new Sqlite(w.path, { timeout: 0 });
  try {
    db.exec(w.sql);
  } catch (err) {
    if (!err || err.code !== 'SQLITE_BUSY') throw err;
    // Taken: say so, and wait right away (the busy wait holds PENDING, queueing new shared takers).
    parentPort.postMessage({ waiting: true });
    db.pragma('busy_timeout = ' + Number(w.timeoutMs));
    db.exec(w.sql);
  }
} catch (err) {
  try { db && db.close(); } catch {}
  parentPort.postMessage({ ok: false, busy: err && err.code === 'SQLITE_BUSY', error: String(err && err.message) });
  process.exit(0);
}
parentPort.once('message', () => { try { db.exec('COMMIT'); } finally { db.close(); process.exit(0); } });
parentPort.postMessage({ ok: true });
`;

/** Create `dir` (0755) when missing. */
export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
}

