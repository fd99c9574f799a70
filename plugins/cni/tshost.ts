// The tshost CNI plugin's spec and main: light on purpose; the host driver and the store
// load only when no daemon takes the request.
import { confString, DEFAULT_DAEMON_SOCKET, type CniContext } from './context.js';
import { runPlugin, type PluginHandlers, type PluginSpec } from './skel.js';

/** tshost's spec (see tsbridgeSpec for the meaning of `ctx`). */
export function tshostSpec(ctx?: CniContext): PluginSpec {
  let loaded: Promise<PluginHandlers> | undefined;
  const spec: PluginSpec = {
    name: 'tshost',
    about: 'tshost: tsoverlay host-network CNI plugin (records the attachment and reserves its ports; creates no interface)',
    // Loaded once: a daemon keeps the handlers (and their caches) across requests.
    handlers: (req) =>
      (loaded ??= (async () => {
        const { createTshostHandlers } = await import('./tshost-handlers.js');
        return createTshostHandlers(ctx ?? (await import('./standalone.js')).standaloneContextFor(req));
      })()),
  };
  if (!ctx) {
    spec.daemonSocket = (req) => confString(req.conf as unknown as Record<string, unknown>, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET;
    spec.standalone = async (req) => (await import('./standalone.js')).holdStandalone(req);
  }
  return spec;
}

/** The executable's main (bin/tshost.ts): one invocation, then exit. */
export function main(): Promise<never> {
  return runPlugin(tshostSpec());
}
