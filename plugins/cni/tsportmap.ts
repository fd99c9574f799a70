// The tsportmap CNI plugin's spec and main: light on purpose; the firewall, the store and the
// allocator load only when no daemon takes the request.
import { confString, DEFAULT_DAEMON_SOCKET, type CniContext } from './context.js';
import { runPlugin, type PluginHandlers, type PluginSpec } from './skel.js';

/** tsportmap's spec (see tsbridgeSpec for the meaning of `ctx`). */
export function tsportmapSpec(ctx?: CniContext): PluginSpec {
  let loaded: Promise<PluginHandlers> | undefined;
  const spec: PluginSpec = {
    name: 'tsportmap',
    about: 'tsportmap: tsoverlay chained port-mapping CNI plugin (runtimeConfig.portMappings through the tsoverlay firewall)',
    // Loaded once: a daemon keeps the handlers (and their caches) across requests.
    handlers: (req) =>
      (loaded ??= (async () => {
        const { createTsportmapHandlers } = await import('./tsportmap-handlers.js');
        return createTsportmapHandlers(ctx ?? (await import('./standalone.js')).standaloneContextFor(req));
      })()),
  };
  if (!ctx) {
    spec.daemonSocket = (req) => confString(req.conf as unknown as Record<string, unknown>, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET;
    spec.standalone = async (req) => (await import('./standalone.js')).holdStandalone(req);
  }
  return spec;
}

/** The executable's main (bin/tsportmap.ts): one invocation, then exit. */
export function main(): Promise<never> {
  return runPlugin(tsportmapSpec());
}
