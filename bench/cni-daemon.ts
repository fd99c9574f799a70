// The daemon's CNI side as the CNI benchmarks run it inside their bench host namespace: the
// store, a firewall and the plugin specs over the daemon's own context (plugins/cni/specs.ts),
// iproute2 forked through `spawn` (a SpawnHelper, as daemon/daemon.ts does).
import { hostname } from 'node:os';
import type { spawnCollect } from '../netlink/runner.js';

/** Open the store, initialise a firewall, and build the specs `serveHandOff` looks plugins up in. */
export async function benchCniDaemon(storeUrl: string, spawn: typeof spawnCollect) {
  const { openStore } = await import('../store/open.js');
  const { Kernel } = await import('../netlink/index.js');
  const { Firewall } = await import('../proxy/firewall.js');
  const { HostPortAllocator } = await import('../proxy/allocator.js');
  const { cniPluginSpecs, daemonCniContext } = await import('../plugins/cni/specs.js');
  const store = await openStore(storeUrl);
  const firewall = new Firewall({ allocator: new HostPortAllocator({ hostId: hostname(), store }) });
  await firewall.init();
  const specs = cniPluginSpecs(daemonCniContext({ hostId: hostname(), store, storeUrl, kernel: new Kernel({ spawn }), firewall, warn: (m) => process.stderr.write(`${m}\n`) }));
  return { store, specs, specFor: (name: string) => specs[name as keyof typeof specs] };
}
