// The daemon's Docker side: the bridge and host drivers behind `tsbridge` and `tshost`, the IPAM behind `tsipam`,
// served to the engine on the plugin dir; reconciled from the store before serving, so a
// restarted daemon finds bridges, rules and published ports as the records say.
import { Ipam } from '../ipam/index.js';
import type { Kernel } from '../netlink/index.js';
import { BridgeDriver } from '../plugins/drivers/bridge/bridge.js';
import { HostDriver } from '../plugins/drivers/host/host.js';
import { EngineClient } from '../plugins/libnetwork/adapters/engine-client.js';
import { EngineSync } from '../plugins/libnetwork/adapters/engine-sync.js';
import { DockerHostNetwork } from '../plugins/libnetwork/adapters/host.js';
import { DockerIpam } from '../plugins/libnetwork/adapters/ipam.js';
import { DockerOverlayNetwork } from '../plugins/libnetwork/adapters/overlay.js';
import type { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import { DockerBridgeNetwork } from '../plugins/libnetwork/adapters/network.js';
import { IpamOwners } from '../plugins/libnetwork/adapters/owners.js';
import { startPluginServer, type PluginServer } from '../plugins/libnetwork/server.js';
import type { HostPortAllocator } from '../proxy/allocator.js';
import type { Firewall } from '../proxy/firewall.js';
import { preloadPortmaps } from '../plugins/cni/firewall-state.js';
import type { Store } from '../store/types.js';
import type { Logger } from './log.js';

export interface DockerPluginsDeps {
  hostId: string;
  /** Where the sockets go (`tsbridge.sock`, `tsipam.sock`, …). */
  pluginDir: string;
  /** The engine's API (`unix:///var/run/docker.sock`): container names, and GC of leaks. */
  dockerHost: string;
  store: Store;
  kernel: Kernel;
  firewall: Firewall;
  /** The firewall's host-port allocator (host endpoints reserve their exposed ports in it). */
  ports: HostPortAllocator;
  ipam: Ipam;
  /** The started overlay driver, served as `tsoverlay`. */
  overlay?: OverlayDriver;
  log: Logger;
}

export interface DockerPlugins {
  readonly server: PluginServer;
  readonly bridge: BridgeDriver;
  readonly host: HostDriver;
  readonly engine: EngineSync;
  /** Stop serving (sockets removed) and finish background teardown; the data plane stays. */
  close(): Promise<void>;
}

/** How often leaks are looked for (the first pass runs once the plugins are served). */
export const ENGINE_GC_INTERVAL_MS = 5 * 60_000;
/** Records younger than this may belong to a call in flight (the engine retries for 30 s). */
export const ENGINE_GC_GRACE_MS = 60_000;

/** The plugin names the engine sees. */
export const PLUGIN_NAMES = Object.freeze({ bridge: 'tsbridge', host: 'tshost', overlay: 'tsoverlay', ipam: 'tsipam' });

/**
 * Build the drivers, reconcile them with the store (bridges, addresses, rules, published ports;
 * stale chains removed), then serve them; then look for leaks the engine explains away (GC),
 * now and every ENGINE_GC_INTERVAL_MS. A reconcile error on one object is logged, not fatal.
 */
export async function startDockerPlugins(deps: DockerPluginsDeps): Promise<DockerPlugins> {
  const log = deps.log.child({ component: 'docker' });
  const { bridge, host } = buildDrivers(deps, log);
  await reconcile(deps, bridge, host, log);
  const engine = new EngineSync({
    engine: new EngineClient(deps.dockerHost),
    store: deps.store,
    ipam: deps.ipam,
    hostId: deps.hostId,
    deleteEndpoint: (ep) => (ep.driver === 'host' ? host.deleteEndpoint(ep.networkId, ep.id) : bridge.deleteEndpoint(ep.networkId, ep.id)),
    graceMs: ENGINE_GC_GRACE_MS,
    log,
  });
  const onJoined = (ref: { networkId: string; endpointId: string }) => engine.scheduleNames(ref);
  const bridgeNet = new DockerBridgeNetwork({ driver: bridge, name: PLUGIN_NAMES.bridge, owners: new IpamOwners(deps.ipam), log, onJoined });
  const server = await startPluginServer({
    pluginDir: deps.pluginDir,
    drivers: {
      [PLUGIN_NAMES.bridge]: bridgeNet,
      [PLUGIN_NAMES.host]: new DockerHostNetwork({ driver: host, name: PLUGIN_NAMES.host, onJoined }),
      ...(deps.overlay
        ? { [PLUGIN_NAMES.overlay]: new DockerOverlayNetwork({ driver: deps.overlay, name: PLUGIN_NAMES.overlay, owners: new IpamOwners(deps.ipam), onJoined }) }
        : {}),
    },
    ipam: { name: PLUGIN_NAMES.ipam, backend: new DockerIpam({ ipam: deps.ipam, hostId: deps.hostId }) },
    log,
  });
  const gc = () => engine.gc().catch((err: Error) => log.info({ engine: deps.dockerHost, err: err.message }, 'docker GC skipped: the engine cannot be asked'));
  void gc();
  // A crash between the engine's calls leaves records whose rollback never reached us (the
  // engine even retries with an empty body); they are young at start-up, so look again just
  // after the grace period instead of a whole interval later.
  const soon = setTimeout(gc, ENGINE_GC_GRACE_MS + 5_000);
  soon.unref();
  const timer = setInterval(gc, ENGINE_GC_INTERVAL_MS);
  timer.unref();
  return {
    server,
    bridge,
    host,
    engine,
    async close() {
      clearInterval(timer);
      clearTimeout(soon);
      engine.stop();
      await server.close();
      await bridgeNet.drain(); // teardown already answered to the engine finishes before we exit
    },
  };
}

function buildDrivers(deps: DockerPluginsDeps, log: Logger): { bridge: BridgeDriver; host: HostDriver } {
  const { kernel, store, hostId } = deps;
  return {
    bridge: new BridgeDriver({ kernel, store, hostId, firewall: deps.firewall, log: log.child({ driver: PLUGIN_NAMES.bridge }) }),
    host: new HostDriver({ kernel, store, hostId, ports: deps.ports, log: log.child({ driver: PLUGIN_NAMES.host }) }),
  };
}

async function reconcile(deps: DockerPluginsDeps, bridge: BridgeDriver, host: HostDriver, log: Logger): Promise<void> {
  const { firewall } = deps;
  const started = Date.now();
  // Desired rules from the records first (one transaction), then a full pass that also drops
  // stale chains; host endpoints' ports reserved again. The ports CNI tsportmap published are
  // desired too, or the full pass would remove their rules.
  const warn = (msg: string) => log.warn(msg);
  const report = await firewall.bulk(async () => {
    const r = await bridge.reconcile();
    await preloadPortmaps(firewall, deps.store, deps.hostId, warn);
    return r;
  });
  await firewall.reconcile();
  const hostReport = await host.reconcile();
  const errors = [...report.errors, ...hostReport.errors];
  log[errors.length > 0 ? 'warn' : 'info']({ ms: Date.now() - started, ...report, hostReserved: hostReport.reserved.length, errors }, 'docker drivers reconciled');
}
