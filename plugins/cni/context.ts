// What the CNI plugin handlers need from their surroundings: a store by URL, the host id,
// the kernel, a firewall holding the host's whole desired state, a warning sink. Types and
// defaults only (no runtime imports): standalone.ts builds the executables' context, the
// daemon passes its own (shared store, kernel and firewall).
import type { Kernel } from '../../netlink/index.js';
import type { Firewall } from '../../proxy/firewall.js';
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
  /** This host's id: block affinity, the `host` of allocations, records and port reservations. */
  hostId: string;
  /** Open (or share) the store named by `url`. Throws StoreError. */
  openStore(url: string): Promise<StoreHandle>;
  /** The kernel layer (one per process). */
  kernel(): Promise<Kernel>;
  /**
   * Run fn with a Firewall that knows every network and published port of this host, and
   * apply what fn changed. Standalone: under a host-wide lock, the state preloaded from
   * `store`, our chains reconciled to it at the end. The daemon: its own firewall.
   */
  withFirewall<T>(store: Store, fn: (fw: Firewall) => Promise<T>): Promise<T>;
  /** One line for the runtime's log (stderr for executables). */
  warn(msg: string): void;
}

/** Run fn with a store from ctx, releasing it afterwards (also on failure). */
export async function withStore<T>(ctx: Pick<CniContext, 'openStore'>, url: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const h = await ctx.openStore(url);
  try {
    return await fn(h.store);
  } finally {
    await h.release().catch(() => {});
  }
}

/** A string config key, or undefined when absent or empty. */
export function confString(o: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
