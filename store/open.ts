// Opening a store from its URL. The etcd backend is loaded only when asked for, so the
// short-lived CNI executables on the embedded store never pay for loading etcd3/grpc.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreError } from './errors.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './types.js';
import { parseStoreUrl } from './url.js';

export interface OpenStoreOptions {
  /** This host's id (reserved for backends that tag writes; unused today). */
  hostId?: string;
  /** Receives one line per notable backend event (reconnects, expiries). */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** SQLite tuning (tests use short poll/sweep periods). */
  sqlite?: SqliteStoreOptions;
}

/** The default store URL for a state directory: sqlite://<stateDir>/store.db. */
export function defaultStoreUrl(stateDir: string): string {
  return `sqlite://${join(stateDir, 'store.db')}`;
}

/**
 * Open a store from a URL (see store/url.ts for the forms). SQLite creates the file's
 * directory (mode 0700) when missing. Throws StoreError: bad-request for a bad URL,
 * unavailable when the backend cannot be reached.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStoreUrl(url);
  if (target.kind === 'sqlite') {
    try {
      mkdirSync(dirname(target.file), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StoreError('unavailable', `cannot create the directory of ${target.description}: ${(err as Error).message}`, {
        cause: err,
        retryable: false,
      });
    }
    return SqliteStore.open(target.file, opts.sqlite);
  }
  const { EtcdStore } = await import('./etcd.js');
  return EtcdStore.connect(target.config, { description: target.description, log: opts.log });
}
