// The tsoverlay CNI plugin's spec and main: light on purpose (protocol modules only). The overlay
// needs the daemon on every host: the executable hands each request to it on `daemonSocket`;
// the daemon serves it with its own overlay driver (tsoverlaySpec(ctx, { driver, storeUrl })).
import { confString, DEFAULT_DAEMON_SOCKET, type CniContext } from './context.js';
import { runPlugin, type PluginSpec } from './skel.js';
import type { OverlayBinding } from './tsoverlay-handlers.js';

/**
 * tsoverlay's spec. With `ctx` and `overlay` (the daemon) the handlers run on the daemon's
 * driver; without, the executable hands off to the daemon, and only DEL works when none answers.
 */
export function tsoverlaySpec(ctx?: CniContext, overlay?: OverlayBinding): PluginSpec {
  const spec: PluginSpec = {
    name: 'tsoverlay',
    about: 'tsoverlay: tsoverlay VXLAN overlay CNI plugin (one L2 network across hosts; needs the tsoverlay daemon)',
    handlers: async (req) => {
      const { createTsoverlayHandlers } = await import('./tsoverlay-handlers.js');
      return createTsoverlayHandlers(ctx ?? (await import('./standalone.js')).standaloneContextFor(req), overlay);
    },
  };
  if (!ctx) {
    spec.daemonSocket = (req) => confString(req.conf as unknown as Record<string, unknown>, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET;
    spec.standalone = async (req) => (await import('./standalone.js')).holdStandalone(req);
  }
  return spec;
}

/** The executable's main (the `tsoverlay` binary when CNI_COMMAND is set): one invocation, then exit. */
export function main(): Promise<never> {
  return runPlugin(tsoverlaySpec());
}
