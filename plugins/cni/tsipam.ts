// The tsipam CNI IPAM plugin's spec and main: light on purpose (protocol modules only);
// the IPAM, the store and SQLite load only when no daemon takes the request.
import { DEFAULT_DAEMON_SOCKET, type CniContext } from './context.js';
import { runPlugin, type CniRequest, type PluginHandlers, type PluginSpec } from './skel.js';

/** Where a request for a plugin with this config goes: `ipam.daemonSocket`, the plugin's `daemonSocket`, or the default. */
export function daemonSocketOf(req: Pick<CniRequest, 'conf'>, ipamFirst = false): string {
  const ipam = (req.conf.ipam ?? {}) as Record<string, unknown>;
  const own = typeof req.conf.daemonSocket === 'string' && req.conf.daemonSocket !== '' ? req.conf.daemonSocket : undefined;
  const fromIpam = typeof ipam.daemonSocket === 'string' && ipam.daemonSocket !== '' ? ipam.daemonSocket : undefined;
  return (ipamFirst ? (fromIpam ?? own) : own) ?? DEFAULT_DAEMON_SOCKET;
}

/**
 * tsipam's spec. With `ctx` (the daemon) the handlers run in that context and nothing is
 * handed off; without, the executable hands off to the daemon when one listens and
 * otherwise runs standalone against the store.
 */
export function tsipamSpec(ctx?: CniContext): PluginSpec {
  let loaded: Promise<PluginHandlers> | undefined;
  const spec: PluginSpec = {
    name: 'tsipam',
    about: 'tsipam: tsoverlay IPAM CNI plugin (host-local compatible ranges, allocations in the tsoverlay store)',
    // Loaded once: a daemon keeps the handlers (and their caches) across requests.
    handlers: (req) =>
      (loaded ??= (async () => {
        const { createTsipamHandlers } = await import('./tsipam-handlers.js');
        return createTsipamHandlers(ctx ?? (await import('./standalone.js')).standaloneContextFor(req));
      })()),
  };
  if (!ctx) {
    spec.daemonSocket = (req) => daemonSocketOf(req, true);
    spec.standalone = async (req) => (await import('./standalone.js')).holdStandalone(req);
  }
  return spec;
}

/** The executable's main (bin/tsipam.ts): one invocation, then exit. */
export function main(): Promise<never> {
  return runPlugin(tsipamSpec());
}
