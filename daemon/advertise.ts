// Finding this host's advertise (underlay) address when none is configured:
// the address of the interface holding the default route, else the first global
// address, else none (the host then works alone, without overlay peers).
import { Kernel } from '../netlink/index.js';

/** Detect the advertise address in the namespace at netnsPath (null: our own). */
export async function detectAdvertise(kernel = new Kernel(), netnsPath: string | null = null): Promise<string | undefined> {
  const ns = kernel.ns(netnsPath);
  const [routes, addresses] = await Promise.all([ns.routes({ family: 4 }), ns.addresses()]);
  const global = addresses.filter((a) => a.scope === 'global');
  const byDefault = routes
    .filter((r) => r.dst === 'default' && r.dev)
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))
    .map((r) => r.src ?? global.find((a) => a.dev === r.dev && a.family === 4)?.address)
    .find((a) => a !== undefined);
  return byDefault ?? global.find((a) => a.family === 4)?.address ?? global[0]?.address;
}
