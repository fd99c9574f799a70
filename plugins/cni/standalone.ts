// The context of a standalone CNI executable (no daemon answered): stores opened per
// invocation, a Kernel of its own, the host firewall rebuilt from the store under a lock.
// Each part is imported on first use, so tsipam never loads the kernel or firewall modules.
import { hostname } from 'node:os';
import type { Kernel } from '../../netlink/index.js';
import type { CniContext, StoreHandle } from './context.js';

export interface StandaloneOptions {
  /** Default: the host name (the daemon's `--host-id` default). */
  hostId?: string;
  /** Directory of the host firewall lock (default $TSOVERLAY_CNI_LOCK_DIR, else /run/tsoverlay). */
  lockDir?: string;
  warn?: (msg: string) => void;
}

/** A context for one plugin process. */
export function standaloneContext(opts: StandaloneOptions = {}): CniContext {
  let kernel: Kernel | undefined;
  const warn = opts.warn ?? ((msg: string) => void process.stderr.write(`${msg}\n`));
  const hostId = opts.hostId ?? hostname();
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
      return withHostFirewall({ store, hostId, warn, ...(lockDir ? { lockDir } : {}) }, fn);
    },
    warn,
  };
}
