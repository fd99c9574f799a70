// The CNI plugins a daemon serves on its hand-off route (POST /v1/cni), and the context it
// gives them: its own store (other URLs opened per request), kernel and firewall.
import type { Kernel } from '../../netlink/index.js';
import type { Firewall } from '../../proxy/firewall.js';
import type { Store } from '../../store/types.js';
import type { CniContext, StoreHandle } from './context.js';
import type { PluginSpec } from './skel.js';
import { tsbridgeSpec } from './tsbridge.js';
import { tshostSpec } from './tshost.js';
import { tsipamSpec } from './tsipam.js';
import { tsportmapSpec } from './tsportmap.js';

/** What a daemon shares with the plugins it serves. */
export interface DaemonCniOptions {
  hostId: string;
  store: Store;
  /** The URL `store` was opened from: configs naming it share it; others are opened per request. */
  storeUrl: string;
  kernel: Kernel;
  firewall: Firewall;
  warn: (msg: string) => void;
}

/**
 * A CniContext over the daemon's own objects (nothing is closed after a request): the daemon's
 * hand-off route (daemon/cni-handoff.ts) and the benchmarks that stand in for it use this one.
 */
export function daemonCniContext(o: DaemonCniOptions): CniContext {
  return {
    hostId: o.hostId,
    async openStore(url: string): Promise<StoreHandle> {
      if (url === o.storeUrl) return { store: o.store, release: async () => {} };
      const { openStore } = await import('../../store/open.js');
      const store = await openStore(url);
      return { store, release: () => store.close() };
    },
    kernel: async () => o.kernel,
    // The daemon's firewall already holds the host's whole desired state; one call's changes
    // are applied together when it ends.
    withFirewall: (_store, fn) => o.firewall.bulk(() => fn(o.firewall)),
    warn: o.warn,
  };
}

/** The plugin specs by executable name, for `serveHandOff(body, name => specs[name])`. */
export function cniPluginSpecs(ctx: CniContext): Record<'tsbridge' | 'tshost' | 'tsipam' | 'tsportmap', PluginSpec> {
  return { tsbridge: tsbridgeSpec(ctx), tshost: tshostSpec(ctx), tsipam: tsipamSpec(ctx), tsportmap: tsportmapSpec(ctx) };
}
