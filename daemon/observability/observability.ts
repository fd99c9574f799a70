// One call for the composition root: the metrics registry and recorders, the instrumented store to
// hand to the rest of the daemon, the scrape-time gauges, and (with an address) the web server.
import type { Ipam } from '../../ipam/index.js';
import type { Store } from '../../store/types.js';
import { instrumentStore } from './instrument-store.js';
import { Metrics } from './metrics.js';
import { registerStateGauges } from './state-gauges.js';
import { startWebServer, type WebLog, type WebServer } from './web.js';

export interface ObservabilityOptions {
  /** The opened store. */
  store: Store;
  /** `--metrics ADDR:PORT`; undefined: metrics are recorded but not served. */
  listen?: { host: string; port: number };
  log: WebLog;
  /** The daemon's IPAM (pool gauges); default a read-only use of a fresh instance. */
  ipam?: Ipam;
  /** Node process metrics (default true). */
  processMetrics?: boolean;
}

export interface Observability {
  metrics: Metrics;
  /**
   * `store` wrapped so every call is timed: hand this one to drivers, IPAM, DNS and the proxy.
   * Its close() closes the underlying store (close one of the two, once).
   */
  store: Store;
  /** Present when `listen` was given. */
  web?: WebServer;
  /** Stop the web server (the store is left open). */
  close(): Promise<void>;
}

/** Build metrics over `store` and serve them (with the topology page) when `listen` is set. */
export async function startObservability(opts: ObservabilityOptions): Promise<Observability> {
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  const store = instrumentStore(opts.store, metrics.store);
  // Scrapes and the page read the plain store, so tsoverlay_store_* measure the daemon's own work.
  registerStateGauges(metrics.registry, opts.store, {
    ipam: opts.ipam,
    onError: (err) => opts.log.warn({ err: err.message }, 'metrics: cannot read the store'),
  });
  const web = opts.listen ? await startWebServer({ listen: opts.listen, store: opts.store, registry: metrics.registry, log: opts.log }) : undefined;
  return { metrics, store, web, close: async () => web?.close() };
}
