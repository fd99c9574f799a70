// The observability package's public surface: metrics registry and recorders, the store wrapper,
// scrape-time gauges, the topology reader and the local web server (metrics, topology page).
export { Metrics, type MetricsOptions, type DnsRecorder, type ProxyRecorder, type ReconcileRecorder, type StoreRecorder } from './metrics.js';
export { instrumentStore, keyArea } from './instrument-store.js';
export { registerStateGauges, poolUsage, type PoolUsage, type StateGaugeOptions } from './state-gauges.js';
export { readTopology, type Topology, type TopologyHost, type TopologyNetwork, type TopologyEndpoint } from './topology.js';
export { startWebServer, WebServerError, type WebServer, type WebServerOptions } from './web.js';
export { startObservability, type Observability, type ObservabilityOptions } from './observability.js';
