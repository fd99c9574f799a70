// The dns package's public surface: the per-host DNS (HostDns), the standalone server
// (serveStandalone), and the parts they are built from for other compositions.
export { HostDns, gatewayAddresses, type HostDnsOptions } from './host.js';
export { serveStandalone, parseListen, type StandaloneOptions, type StandaloneHandle } from './standalone.js';
export { DnsServer, domainKey, type DnsServerOptions, type ListenAddress, type TtlOptions } from './server.js';
export { RecordIndex, type RecordKind } from './record-index.js';
export { StoreSync, type DnsLog } from './store-sync.js';
export { EndpointScopes, OpenScopes, type ScopeResolver } from './scope.js';
export type { Scope, RecordBackend, RecordSet } from './backend.js';
export { parseUpstream, parseResolvConf, type Upstream } from './upstreams.js';
export type { TcpLimits } from './tcp.js';
export { DnsError, type DnsErrorCode } from './errors.js';
export { parseEndpoint, parseNetwork, parseService, parseSkydns } from './records.js';
