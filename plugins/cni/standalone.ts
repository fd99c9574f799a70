// The context of a standalone CNI executable (no daemon answered): stores opened per
// invocation, a Kernel of its own, the host firewall rebuilt from the store under a lock, the
// host id and firewall backend the daemon records in the meeting directory, and the start-up
// lock held for the call.
// Each part is imported on first use, so tsipam never loads the kernel or firewall modules.
import { existsSync } from 'node:fs';
import type { Kernel } from '../../netlink/index.js';
import { confString, DEFAULT_STORE_URL, type CniContext, type StoreHandle } from './context.js';
import { claimHostId, defaultHostId, ensureDir, HostStateError, HostStateLock, readFirewallBackend, readHostId, stateDirOfStore } from './host-state.js';
import type { CniRequest } from './skel.js';

export interface StandaloneOptions {
  /** Default: the id recorded in `stateDir` (host-state.ts), else the host name (the daemon's default). */
  hostId?: string;
  /** The meeting directory of this call's store (stateDirOfRequest). */
  stateDir?: string;
  /** Directory of the host firewall lock (default $TSOVERLAY_CNI_LOCK_DIR, else /run/tsoverlay). */
  lockDir?: string;
  warn?: (msg: string) => void;
}

/** Set while a standalone call holds the start-up lock: plugins it executes (an exec'd IPAM) must not wait for it again. */
const HELD_ENV = 'TSOVERLAY_HOST_LOCK_HELD';

/** How long a standalone call waits for a starting daemon (its start-up reconcile) to answer. */
export const STARTUP_LOCK_TIMEOUT_MS = 60_000;

/** A request's store URL: the plugin's `store`, else its `ipam.store`, else the default. */
function storeOf(req: Pick<CniRequest, 'conf'>): string {
  const conf = req.conf as unknown as Record<string, unknown>;
  return confString(conf, 'store') ?? confString(conf.ipam as Record<string, unknown> | undefined, 'store') ?? DEFAULT_STORE_URL;
}

/** The meeting directory of a request (host-state.ts): where its host id and start-up lock are. */
export function stateDirOfRequest(req: Pick<CniRequest, 'conf'>): string {
  return stateDirOfStore(storeOf(req));
}

/**
 * Prepare a call no daemon took, returning what ends it: hold the start-up lock shared for the
 * whole verb (a starting daemon holds it exclusive until its socket answers, so afterwards the
 * caller asks the socket again), and on ADD record the host id when none is (the first to
 * record state on this host names it; a daemon with another --host-id then refuses to start
 * rather than prune what was made). A directory that does not exist (etcd store, no daemon
 * state dir) has no daemon to meet: nothing is held.
 */
export async function holdStandalone(req: Pick<CniRequest, 'conf' | 'command'>, env: NodeJS.ProcessEnv = process.env, timeoutMs = STARTUP_LOCK_TIMEOUT_MS): Promise<() => void> {
  const dir = stateDirOfRequest(req);
  if (env[HELD_ENV] === dir) return () => {}; // our parent plugin holds it
  let lock: HostStateLock;
  try {
    if (storeOf(req).startsWith('sqlite:')) ensureDir(dir); // the store's own directory
    else if (!existsSync(dir)) return () => {};
    if (req.command === 'ADD') claimHostId(dir, defaultHostId());
    lock = await HostStateLock.acquire(dir, 'shared', timeoutMs);
  } catch (err) {
    // A directory we cannot use is one no daemon uses either; the handler reports the store's
    // own problem (a path under a file is 11, as before). Only a daemon starting is waited for.
    if (err instanceof HostStateError) throw err;
    return () => {};
  }
  env[HELD_ENV] = dir;
  return () => {
    delete env[HELD_ENV];
    lock.release();
  };
}

/** A context for one plugin process. */
export function standaloneContext(opts: StandaloneOptions = {}): CniContext {
  let kernel: Kernel | undefined;
  const warn = opts.warn ?? ((msg: string) => void process.stderr.write(`${msg}\n`));
  const hostId = opts.hostId ?? (opts.stateDir !== undefined ? readHostId(opts.stateDir) : undefined) ?? defaultHostId();
  // Tests and unusual layouts move the lock file; every plugin of a host must agree on it.
  const lockDir = opts.lockDir ?? (process.env.TSOVERLAY_CNI_LOCK_DIR || undefined);
  return {
    hostId,
    async openStore(url: string): Promise<StoreHandle> {
      const { openStore } = await import('../../store/open.js');
      const store = await openStore(url);
      return { store, release: () => store.close() };
    },
    async kernel() {
      if (!kernel) kernel = new (await import('../../netlink/index.js')).Kernel();
      return kernel;
    },
    async withFirewall(store, fn) {
      const { withHostFirewall } = await import('./firewall-state.js');
      // Read when used (under the start-up lock): the backend the daemon last started with.
      const backend = (opts.stateDir !== undefined ? readFirewallBackend(opts.stateDir) : undefined) ?? 'iptables';
      return withHostFirewall({ store, hostId, warn, backend, ...(lockDir ? { lockDir } : {}) }, fn);
    },
    warn,
  };
}

/** The standalone context of a request: its host id from the request's meeting directory. */
export function standaloneContextFor(req: Pick<CniRequest, 'conf'> | undefined): CniContext {
  return standaloneContext(req ? { stateDir: stateDirOfRequest(req) } : {});
}
