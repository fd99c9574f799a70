// The daemon's side of the CNI hand-off: the five plugins' handlers run here, in the
// daemon's context (its store, kernel and firewall), when an executable posts its
// invocation to POST /v1/cni. Short-lived executables then load no store or kernel code.
import type { Kernel } from '../netlink/index.js';
import type { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import { serveHandOff } from '../plugins/cni/handoff-server.js';
import type { PluginSpec } from '../plugins/cni/skel.js';
import { cniPluginSpecs, daemonCniContext } from '../plugins/cni/specs.js';
import { tsoverlaySpec } from '../plugins/cni/tsoverlay.js';
import type { Firewall } from '../proxy/firewall.js';
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

/** Handler for POST /v1/cni: body {plugin, env, stdin} → {status, body}. */
export function cniHandOff(deps: CniHandOffDeps): (body: unknown) => Promise<{ status: number; body: unknown }> {
  const log = deps.log.child({ component: 'cni' });
  const ctx = daemonCniContext({ ...deps, warn: (msg) => log.warn(msg) });
  const specs = new Map<string, PluginSpec>([
    ...Object.entries(cniPluginSpecs(ctx)),
    ['tsoverlay', tsoverlaySpec(ctx, { driver: deps.overlay, storeUrl: deps.storeUrl })],
  ]);
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
