// The daemon's Docker side: the bridge and host drivers behind `tsbridge` and `tshost`, the IPAM behind `tsipam`,
// served to the engine on the plugin dir; reconciled from the store before serving, so a
// restarted daemon finds bridges, rules and published ports as the records say.
import { Ipam } from '../ipam/index.js';
import type { Kernel } from '../netlink/index.js';
import { BridgeDriver } from '../plugins/drivers/bridge/bridge.js';
import { HostDriver } from '../plugins/drivers/host/host.js';
import { DockerHostNetwork } from '../plugins/libnetwork/adapters/host.js';
import { DockerIpam } from '../plugins/libnetwork/adapters/ipam.js';
import { DockerBridgeNetwork } from '../plugins/libnetwork/adapters/network.js';
import { IpamOwners } from '../plugins/libnetwork/adapters/owners.js';
import { startPluginServer, type PluginServer } from '../plugins/libnetwork/server.js';
import type { HostPortAllocator } from '../proxy/allocator.js';
import type { Firewall } from '../proxy/firewall.js';
import type { Store } from '../store/types.js';
import type { Logger } from './log.js';

export interface DockerPluginsDeps {
  hostId: string;
  /** Where the sockets go (`tsbridge.sock`, `tsipam.sock`, …). */
  pluginDir: string;
  store: Store;
  kernel: Kernel;
  firewall: Firewall;
  /** The firewall's host-port allocator (host endpoints reserve their exposed ports in it). */
  ports: HostPortAllocator;
  ipam: Ipam;
  log: Logger;
}

export interface DockerPlugins {
  readonly server: PluginServer;
  readonly bridge: BridgeDriver;
  readonly host: HostDriver;
  /** Stop serving (sockets removed) and finish background teardown; the data plane stays. */
  close(): Promise<void>;
}

/** The plugin names the engine sees. */
export const PLUGIN_NAMES = Object.freeze({ bridge: 'tsbridge', host: 'tshost', ipam: 'tsipam' });

/**
 * Build the drivers, reconcile them with the store (bridges, addresses, rules, published ports;
 * stale chains removed), then serve them. A reconcile error on one object is logged, not fatal.
 */
export async function startDockerPlugins(deps: DockerPluginsDeps): Promise<DockerPlugins> {
  const log = deps.log.child({ component: 'docker' });
  const bridge = new BridgeDriver({
    kernel: deps.kernel,
    store: deps.store,
    hostId: deps.hostId,
    firewall: deps.firewall,
    log: log.child({ driver: PLUGIN_NAMES.bridge }),
  });
  const host = new HostDriver({ store: deps.store, hostId: deps.hostId, kernel: deps.kernel, ports: deps.ports, log: log.child({ driver: PLUGIN_NAMES.host }) });
  await reconcile(deps.firewall, bridge, host, log);
  const owners = new IpamOwners(deps.ipam);
  const bridgeNet = new DockerBridgeNetwork({ driver: bridge, name: PLUGIN_NAMES.bridge, owners, log });
  const server = await startPluginServer({
    pluginDir: deps.pluginDir,
    drivers: {
      [PLUGIN_NAMES.bridge]: bridgeNet,
      [PLUGIN_NAMES.host]: new DockerHostNetwork({ driver: host, name: PLUGIN_NAMES.host }),
    },
    ipam: { name: PLUGIN_NAMES.ipam, backend: new DockerIpam({ ipam: deps.ipam, hostId: deps.hostId }) },
    log,
  });
  return {
    server,
    bridge,
    host,
    async close() {
      await server.close();
      await bridgeNet.drain(); // teardown already answered to the engine finishes before we exit
    },
  };
}

async function reconcile(firewall: Firewall, bridge: BridgeDriver, host: HostDriver, log: Logger): Promise<void> {
  const started = Date.now();
  // Desired rules from the records first (one transaction), then a full pass that also drops
  // stale chains; host endpoints' ports reserved again.
  const report = await firewall.bulk(() => bridge.reconcile());
  await firewall.reconcile();
  const hostReport = await host.reconcile();
  const errors = [...report.errors, ...hostReport.errors];
  log[errors.length > 0 ? 'warn' : 'info']({ ms: Date.now() - started, ...report, hostReserved: hostReport.reserved.length, errors }, 'docker drivers reconciled');
}
