// The daemon's side of the CNI hand-off: the five plugins' handlers run here, in the
// daemon's context (its store, kernel and firewall), when an executable posts its
// invocation to POST /v1/cni. Short-lived executables then load no store or kernel code.
import type { Kernel } from '../netlink/index.js';
import type { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import type { CniContext, StoreHandle } from '../plugins/cni/context.js';
import { serveHandOff } from '../plugins/cni/handoff-server.js';
import type { PluginSpec } from '../plugins/cni/skel.js';
import { tsbridgeSpec } from '../plugins/cni/tsbridge.js';
import { tshostSpec } from '../plugins/cni/tshost.js';
import { tsipamSpec } from '../plugins/cni/tsipam.js';
import { tsoverlaySpec } from '../plugins/cni/tsoverlay.js';
import { tsportmapSpec } from '../plugins/cni/tsportmap.js';
import type { Firewall } from '../proxy/firewall.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import type { Logger } from './log.js';

export interface CniHandOffDeps {
  hostId: string;
  /** The daemon's store and its URL: configs naming that URL share it. */
  store: Store;
  storeUrl: string;
  kernel: Kernel;
  firewall: Firewall;
  overlay: OverlayDriver;
  log: Logger;
}

/** The daemon's CNI context: shared store (others opened per request), kernel and firewall. */
export function daemonCniContext(deps: CniHandOffDeps): CniContext {
  const log = deps.log.child({ component: 'cni' });
  return {
    hostId: deps.hostId,
    async openStore(url: string): Promise<StoreHandle> {
      if (url === deps.storeUrl) return { store: deps.store, release: async () => {} };
      const store = await openStore(url);
      return { store, release: () => store.close() };
    },
    kernel: async () => deps.kernel,
    // The daemon's firewall already holds the host's whole desired state.
    withFirewall: (_store, fn) => deps.firewall.bulk(() => fn(deps.firewall)),
    warn: (msg) => log.warn(msg),
  };
}

/** Handler for POST /v1/cni: body {plugin, env, stdin} → {status, body}. */
export function cniHandOff(deps: CniHandOffDeps): (body: unknown) => Promise<{ status: number; body: unknown }> {
  const ctx = daemonCniContext(deps);
  const specs = new Map<string, PluginSpec>([
    ['tsbridge', tsbridgeSpec(ctx)],
    ['tshost', tshostSpec(ctx)],
    ['tsipam', tsipamSpec(ctx)],
    ['tsportmap', tsportmapSpec(ctx)],
    ['tsoverlay', tsoverlaySpec(ctx, { driver: deps.overlay, storeUrl: deps.storeUrl })],
  ]);
  const log = deps.log.child({ component: 'cni' });
  return async (body) => {
    const started = Date.now();
    const reply = await serveHandOff(body, (plugin) => specs.get(plugin));
    const b = body as { plugin?: unknown; env?: Record<string, unknown> } | null;
    log.info(
      { plugin: b?.plugin, command: b?.env?.CNI_COMMAND, container: b?.env?.CNI_CONTAINERID, status: reply.status, ms: Date.now() - started },
      'cni request',
    );
    return reply;
  };
}
