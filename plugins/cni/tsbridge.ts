// The tsbridge CNI plugin's spec and main: light on purpose (protocol modules only); the
// bridge driver, the IPAM, the store and the firewall load only when no daemon takes the request.
import { confString, DEFAULT_DAEMON_SOCKET, type CniContext } from './context.js';
import { runPlugin, type PluginHandlers, type PluginSpec } from './skel.js';

/**
 * tsbridge's spec. With `ctx` (the daemon) the handlers run in that context; without, the
 * executable hands off to the daemon on `daemonSocket` and otherwise runs standalone.
 */
export function tsbridgeSpec(ctx?: CniContext): PluginSpec {
  let loaded: Promise<PluginHandlers> | undefined;
  const spec: PluginSpec = {
    name: 'tsbridge',
    about: 'tsbridge: tsoverlay bridge CNI plugin (a Linux bridge per network, a veth pair per container)',
    // Loaded once: a daemon keeps the handlers (and their caches) across requests.
    handlers: (req) =>
      (loaded ??= (async () => {
        const { createTsbridgeHandlers } = await import('./tsbridge-handlers.js');
        return createTsbridgeHandlers(ctx ?? (await import('./standalone.js')).standaloneContextFor(req));
      })()),
  };
  if (!ctx) {
    spec.daemonSocket = (req) => confString(req.conf as unknown as Record<string, unknown>, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET;
    spec.standalone = async (req) => (await import('./standalone.js')).holdStandalone(req);
  }
  return spec;
}

/** The executable's main (bin/tsbridge.ts): one invocation, then exit. */
export function main(): Promise<never> {
  return runPlugin(tsbridgeSpec());
}
