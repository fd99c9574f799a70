// The typed interfaces the driver (bridge/overlay/host) and IPAM logic implement for the
// libnetwork HTTP layer. Everything here is already validated and parsed: no wire maps inside.

import type { ErrorKind } from './errors.js';

/** A pino-compatible logger (pino's `(obj, msg)` form); the server uses no other calls. */
export interface Logger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** Handed to every backend call. */
export interface RequestContext {
  /** Unique per HTTP request; appears in the server's log lines for that request. */
  requestId: string;
  /** The plugin name the engine addressed (e.g. "tsbridge", "tsipam"). */
  plugin: string;
  log: Logger;
}

// ---- Option values (parsed by options.ts) -----------------------------------------------------

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** `com.docker.network.bridge.*` options of `docker network create -o`. */
export interface BridgeOptions {
  /** A validated interface name (≤ 15 chars). */
  name?: string;
  enableIcc?: boolean;
  enableIpMasquerade?: boolean;
  /** Default host IP for published ports (normalised). */
  hostBindingIp?: string;
}

/** A network's options, from CreateNetwork's Options map. */
export interface NetworkOptions {
  /** `--internal`: no outside connectivity. */
  internal: boolean;
  /** `--ipv6`. */
  enableIPv6: boolean;
  /** `-o com.docker.network.driver.mtu=N`, 68..65535. */
  mtu?: number;
  bridge: BridgeOptions;
  /** `-o com.docker.network.container_iface_prefix=P`: the DstPrefix to use in Join. */
  containerIfacePrefix?: string;
  /**
   * `-o` keys this layer does not know, for the driver's own config parser to validate
   * (a driver must refuse keys it does not know either). Values are strings.
   */
  driverOpts: Readonly<Record<string, string>>;
}

/** One `-p` mapping (`com.docker.network.portmap`). */
export interface PortMapping {
  proto: Protocol;
  /** Container-side IP, when the engine names one. */
  containerIp?: string;
  containerPort: number;
  /** Host IP to bind, or undefined for every address. */
  hostIp?: string;
  /** 0 = the driver picks (`-P`, `-p 80`). */
  hostPort: number;
  /** Last port of a `-p 8080-8090:80` range; equals hostPort for a single port (0 when hostPort is 0). */
  hostPortEnd: number;
}

/** One port the image or `--expose` exposes (`com.docker.network.endpoint.exposedports`). */
export interface ExposedPort {
  proto: Protocol;
  port: number;
}

/** Options of CreateEndpoint, Join and ProgramExternalConnectivity. */
export interface EndpointOptions {
  /** `--mac-address`, from the base64 `com.docker.network.endpoint.macaddress`; "aa:bb:…" form. */
  macAddress?: string;
  exposedPorts: ExposedPort[];
  portMappings: PortMapping[];
  /** String-valued keys this layer does not know (e.g. `docker network connect --driver-opt`). */
  driverOpts: Readonly<Record<string, string>>;
}

/** One IPAM pool of a network, as CreateNetwork hands it over. */
export interface IpamData {
  addressSpace: string;
  /** Network CIDR, canonical (e.g. "10.1.0.0/24"). */
  pool: string;
  /** The gateway as address/prefix (e.g. "10.1.0.1/24"). */
  gateway?: string;
  /** `--aux-address` name → address/prefix. */
  auxAddresses: Readonly<Record<string, string>>;
}

// ---- NetworkDriver ----------------------------------------------------------------------------

export type Scope = 'local' | 'global';

export interface DriverCapabilities {
  /** Where allocations live. 'global' needs swarm (or a cluster store) on dockerd 20.10. */
  scope: Scope;
  /** Where connectivity reaches; defaults to `scope`. */
  connectivityScope?: Scope;
}

export interface CreateNetworkInput {
  networkId: string;
  options: NetworkOptions;
  ipv4: IpamData[];
  ipv6: IpamData[];
}

export interface AllocateNetworkInput {
  networkId: string;
  /** The raw string options of the swarm manager; the driver validates its own keys. */
  options: Readonly<Record<string, string>>;
  ipv4: IpamData[];
  ipv6: IpamData[];
}

/** Addresses of an endpoint as CIDRs, MAC as "aa:bb:cc:dd:ee:ff". */
export interface EndpointInterface {
  address?: string;
  addressIPv6?: string;
  macAddress?: string;
}

export interface EndpointRef {
  networkId: string;
  endpointId: string;
}

export interface CreateEndpointInput extends EndpointRef {
  /** What the engine already set; the driver must not change these. */
  interface: EndpointInterface;
  options: EndpointOptions;
}

export interface CreateEndpointResult {
  /** Only fields the engine left empty (typically a derived MAC); others are rejected. */
  interface?: EndpointInterface;
}

export interface JoinInput extends EndpointRef {
  /** Path of the container's network namespace. */
  sandboxKey: string;
  options: EndpointOptions;
}

export interface StaticRoute {
  /** CIDR. */
  destination: string;
  /** 'connected' routes carry no next hop. */
  type: 'nexthop' | 'connected';
  nextHop?: string;
}

export interface JoinResult {
  /**
   * The interface the driver created in the engine's namespace, and the name prefix inside the
   * sandbox. Absent: the driver gives the container no interface (dockerd 20.10 accepts that; with
   * no gateway either, it attaches the container to docker_gwbridge for outside connectivity).
   */
  interfaceName?: { srcName: string; dstPrefix: string };
  /** Bare IPs. Without any gateway (and no default route) the engine adds docker_gwbridge. */
  gateway?: string;
  gatewayIPv6?: string;
  staticRoutes?: StaticRoute[];
  disableGatewayService?: boolean;
}

export interface ProgramExternalConnectivityInput extends EndpointRef {
  options: EndpointOptions;
}

/** A DiscoverNew/DiscoverDelete notification; node discovery is type 1. */
export interface DiscoveryInput {
  discoveryType: number;
  /** Node discovery only. */
  node?: { address: string; self: boolean };
}

/**
 * What a Docker network driver implements. Teardown calls (deleteNetwork, deleteEndpoint,
 * leave, revokeExternalConnectivity, freeNetwork) should be idempotent; a 'not-found' error
 * from them is answered as success anyway.
 */
export interface NetworkDriverBackend {
  readonly capabilities: DriverCapabilities;
  createNetwork(input: CreateNetworkInput, ctx: RequestContext): Promise<void>;
  deleteNetwork(input: { networkId: string }, ctx: RequestContext): Promise<void>;
  /** Global scope under swarm only; absent = the engine gets `{Options: {}}`. */
  allocateNetwork?(input: AllocateNetworkInput, ctx: RequestContext): Promise<Record<string, string>>;
  freeNetwork?(input: { networkId: string }, ctx: RequestContext): Promise<void>;
  createEndpoint(input: CreateEndpointInput, ctx: RequestContext): Promise<CreateEndpointResult>;
  /** Free-form operational data; an unknown endpoint must not fail (return {}). */
  endpointOperInfo(input: EndpointRef, ctx: RequestContext): Promise<Record<string, unknown>>;
  deleteEndpoint(input: EndpointRef, ctx: RequestContext): Promise<void>;
  join(input: JoinInput, ctx: RequestContext): Promise<JoinResult>;
  leave(input: EndpointRef, ctx: RequestContext): Promise<void>;
  programExternalConnectivity(input: ProgramExternalConnectivityInput, ctx: RequestContext): Promise<void>;
  revokeExternalConnectivity(input: EndpointRef, ctx: RequestContext): Promise<void>;
  discoverNew?(input: DiscoveryInput, ctx: RequestContext): Promise<void>;
  discoverDelete?(input: DiscoveryInput, ctx: RequestContext): Promise<void>;
}

// ---- IpamDriver -------------------------------------------------------------------------------

export interface IpamCapabilities {
  /** Default false: endpoints then reach CreateEndpoint without a MAC, so a driver may derive one. */
  requiresMacAddress: boolean;
  /**
   * Default false: our pools and addresses persist in the store, and a replay of every
   * endpoint's RequestAddress after an engine restart could not be told apart from a real
   * duplicate `--ip` request. The backend must still be replay-safe for pools and gateways.
   */
  requiresRequestReplay: boolean;
}

/** `--ipam-opt` of RequestPool. */
export interface PoolOptions {
  /** `com.docker.network.ipam.serial`: allocate addresses in order instead of first-free. */
  serial?: boolean;
  /** Keys this layer does not know, for the IPAM's own validation. */
  extra: Readonly<Record<string, string>>;
}

export interface RequestPoolInput {
  addressSpace: string;
  /** Canonical CIDR, or undefined: the IPAM picks one (IPv6 when `v6`). */
  pool?: string;
  /** Canonical CIDR inside `pool` (`--ip-range`). */
  subPool?: string;
  options: PoolOptions;
  v6: boolean;
}

export interface RequestPoolResult {
  poolId: string;
  /** CIDR. */
  pool: string;
  data?: Record<string, string>;
}

/** Options of RequestAddress. */
export interface AddressOptions {
  /** 'gateway' for the network's gateway request (`RequestAddressType`). */
  type?: 'gateway';
  /** Endpoint MAC, only when requiresMacAddress. */
  macAddress?: string;
  serial?: boolean;
  extra: Readonly<Record<string, string>>;
}

export interface RequestAddressInput {
  poolId: string;
  /** A bare, normalised IP (`--ip`, `--gateway`, `--aux-address`), or any free one. */
  address?: string;
  options: AddressOptions;
}

export interface RequestAddressResult {
  /** address/prefix, e.g. "10.1.0.5/24". */
  address: string;
  data?: Record<string, string>;
}

/** What a Docker IPAM driver implements. Releases should be idempotent ('not-found' = success). */
export interface IpamBackend {
  readonly capabilities?: Partial<IpamCapabilities>;
  getDefaultAddressSpaces(ctx: RequestContext): Promise<{ local: string; global: string }>;
  requestPool(input: RequestPoolInput, ctx: RequestContext): Promise<RequestPoolResult>;
  releasePool(input: { poolId: string }, ctx: RequestContext): Promise<void>;
  requestAddress(input: RequestAddressInput, ctx: RequestContext): Promise<RequestAddressResult>;
  releaseAddress(input: { poolId: string; address: string }, ctx: RequestContext): Promise<void>;
}

/** Re-exported so backends need only this module. */
export type { ErrorKind };
