// Firewall rules that come from store records rather than from a driver verb: links
// (`tsoverlay link add`, keys.link) and service VIPs (`tsoverlay service create`, keys.service),
// kept current on this host's firewall while the daemon runs. Limits: a link is applied only
// on the host whose firewall holds its network (bridge networks are per host); every host
// applies every service (its backends must be reachable from there, as with kube-proxy).
import type { Firewall } from '../proxy/firewall.js';
import { ServiceController } from '../proxy/services.js';
import { LinkController } from '../plugins/drivers/common/link-controller.js';
import type { Store } from '../store/index.js';

export interface StoreRulesOptions {
  store: Store;
  firewall: Firewall;
  onError: (err: unknown, what: string) => void;
  onWaiting?: (link: string, why: string) => void;
}

/** The running controllers; stop() leaves the rules in place (a restart re-reads them). */
export interface StoreRules {
  readonly links: LinkController;
  readonly services: ServiceController;
  stop(): Promise<void>;
}

/** Start the link and service controllers (after the firewall knows this host's networks). */
export async function startStoreRules(opts: StoreRulesOptions): Promise<StoreRules> {
  const links = new LinkController(opts);
  const services = new ServiceController({ store: opts.store, firewall: opts.firewall, onError: opts.onError });
  await links.start();
  try {
    await services.start();
  } catch (err) {
    await links.stop();
    throw err;
  }
  return {
    links,
    services,
    async stop() {
      await links.stop();
      await services.stop();
    },
  };
}
