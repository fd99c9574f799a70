// What the CNI plugin handlers need from their surroundings: a store by URL, the host id,
// a kernel handle, a warning sink. Standalone executables open everything per invocation;
// the daemon passes its own (shared) store and kernel instead.
import { hostname } from 'node:os';
import type { Store } from '../../store/types.js';

/** The embedded default store (DESIGN.md "Names users see"). */
export const DEFAULT_STORE_URL = 'sqlite:///var/lib/tsoverlay/store.db';

/** The daemon's local API socket (DESIGN.md `--socket`). */
export const DEFAULT_DAEMON_SOCKET = '/run/tsoverlay/tsoverlay.sock';

/** A store borrowed for one invocation; `release` closes it unless it is shared. */
export interface StoreHandle {
  store: Store;
  release(): Promise<void>;
}

/** Dependencies of the plugin handlers (constructor-style injection; no globals). */
export interface CniContext {
  /** This host's id: block affinity and the `host` of allocations and reservations. */
  hostId: string;
  /** Open (or share) the store named by `url`. Throws StoreError. */
  openStore(url: string): Promise<StoreHandle>;
  /** One line for the runtime's log (stderr for executables). */
  warn(msg: string): void;
}

/**
 * The context of a standalone executable: every store is opened on demand and closed on
 * release; `hostId` is the host name (the daemon's `--host-id` default).
 */
export function standaloneContext(opts: { hostId?: string; warn?: (msg: string) => void } = {}): CniContext {
  return {
    hostId: opts.hostId ?? hostname(),
    async openStore(url: string): Promise<StoreHandle> {
      const { openStore } = await import('../../store/open.js');
      const store = await openStore(url);
      return { store, release: () => store.close() };
    },
    warn: opts.warn ?? ((msg) => process.stderr.write(`${msg}\n`)),
  };
}

/** Run fn with a store from ctx, releasing it afterwards (also on failure). */
export async function withStore<T>(ctx: CniContext, url: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const h = await ctx.openStore(url);
  try {
    return await fn(h.store);
  } finally {
    await h.release().catch(() => {});
  }
}
