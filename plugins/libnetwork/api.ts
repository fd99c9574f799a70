// Wire types of the Docker libnetwork remote plugin protocol (plugin API v1, engine 20.10):
// every /Plugin.Activate, /NetworkDriver.* and /IpamDriver.* body, declared once (CONVENTIONS rule 3).
// Field names are the engine's. Option maps stay `unknown` here: options.ts turns them into types.

/** The media type the engine sends in `Accept` and that we answer with. */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** The roles a plugin socket can announce in its activation manifest. */
export type PluginRole = 'NetworkDriver' | 'IpamDriver';

/** The methods served, per role (path = `/<Role>.<Method>`). */
export const NETWORK_METHODS = [
  'GetCapabilities',
  'CreateNetwork',
  'DeleteNetwork',
  'AllocateNetwork',
  'FreeNetwork',
  'CreateEndpoint',
  'EndpointOperInfo',
  'DeleteEndpoint',
  'Join',
  'Leave',
  'ProgramExternalConnectivity',
  'RevokeExternalConnectivity',
  'DiscoverNew',
  'DiscoverDelete',
] as const;
export type NetworkMethod = (typeof NETWORK_METHODS)[number];

export const IPAM_METHODS = [
  'GetCapabilities',
  'GetDefaultAddressSpaces',
  'RequestPool',
  'ReleasePool',
  'RequestAddress',
  'ReleaseAddress',
] as const;
export type IpamMethod = (typeof IPAM_METHODS)[number];

// ---- Plugin handshake -------------------------------------------------------------------------

/** POST /Plugin.Activate has no body. */
export interface ActivateResponse {
  Implements: PluginRole[];
}

// ---- Errors -----------------------------------------------------------------------------------

/** A NetworkDriver failure reply. */
export interface NetworkErrorResponse {
  Err: string;
}

/**
 * An IpamDriver failure reply. The engine's IPAM proxy reads only `Error` from a 200 reply,
 * while its plugin client reads only `Err` from a non-200 reply (moby pkg/plugins/client.go),
 * so we send the message in both.
 */
export interface IpamErrorResponse {
  Error: string;
  Err: string;
}

/** Option maps as the engine serialises them (Go map[string]interface{}; null when empty). */
export type WireOptions = Record<string, unknown> | null | undefined;

// ---- NetworkDriver ----------------------------------------------------------------------------

export type WireScope = 'local' | 'global';

/** POST /NetworkDriver.GetCapabilities has no body. */
export interface NetworkCapabilitiesResponse {
  Scope: WireScope;
  ConnectivityScope?: WireScope;
}

/** One IPAM pool of a network as the engine hands it to the driver. */
export interface WireIpamData {
  AddressSpace: string;
  /** CIDR. */
  Pool: string;
  /** CIDR (address/prefix of the pool); absent when the engine has none. */
  Gateway?: string;
  /** name → CIDR. */
  AuxAddresses?: Record<string, string> | null;
}

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: WireOptions;
  IPv4Data?: WireIpamData[] | null;
  IPv6Data?: WireIpamData[] | null;
}
export type CreateNetworkResponse = Record<string, never>;

export interface DeleteNetworkRequest {
  NetworkID: string;
}

/** Swarm/global scope only: the manager allocates driver resources for a network. */
export interface AllocateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, string> | null;
  IPv4Data?: WireIpamData[] | null;
  IPv6Data?: WireIpamData[] | null;
}
export interface AllocateNetworkResponse {
  /** Handed to CreateNetwork on every node. */
  Options: Record<string, string>;
}

export interface FreeNetworkRequest {
  NetworkID: string;
}

export interface WireEndpointInterface {
  /** IPv4 CIDR or "". */
  Address?: string;
  /** IPv6 CIDR or "". */
  AddressIPv6?: string;
  /** "aa:bb:cc:dd:ee:ff" or "". */
  MacAddress?: string;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Interface?: WireEndpointInterface | null;
  Options?: WireOptions;
}
/** Fields the engine already set must be left out (it refuses a modification). */
export interface CreateEndpointResponse {
  Interface?: WireEndpointInterface;
}

export interface EndpointOperInfoRequest {
  NetworkID: string;
  EndpointID: string;
}
export interface EndpointOperInfoResponse {
  Value: Record<string, unknown>;
}

export interface DeleteEndpointRequest {
  NetworkID: string;
  EndpointID: string;
}

export interface JoinRequest {
  NetworkID: string;
  EndpointID: string;
  /** Path of the sandbox's network namespace, e.g. /var/run/docker/netns/<id>. */
  SandboxKey: string;
  Options?: WireOptions;
}

export interface WireInterfaceName {
  SrcName: string;
  DstPrefix: string;
}

/** RouteType 0: via NextHop; 1: connected (no NextHop). */
export interface WireStaticRoute {
  Destination: string;
  RouteType: 0 | 1;
  NextHop?: string;
}

export interface JoinResponse {
  InterfaceName?: WireInterfaceName;
  /** A bare IP (not CIDR). */
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: WireStaticRoute[];
  DisableGatewayService?: boolean;
}

export interface LeaveRequest {
  NetworkID: string;
  EndpointID: string;
}

export interface ProgramExternalConnectivityRequest {
  NetworkID: string;
  EndpointID: string;
  Options?: WireOptions;
}

export interface RevokeExternalConnectivityRequest {
  NetworkID: string;
  EndpointID: string;
}

/** DiscoveryType 1 = node discovery, data {Address, self}. */
export interface DiscoveryNotification {
  DiscoveryType: number;
  DiscoveryData?: unknown;
}

/** The `{}` reply of every method that returns nothing. */
export type EmptyResponse = Record<string, never>;

// ---- IpamDriver -------------------------------------------------------------------------------

/** POST /IpamDriver.GetCapabilities has no body. */
export interface IpamCapabilitiesResponse {
  RequiresMACAddress: boolean;
  RequiresRequestReplay: boolean;
}

/** POST /IpamDriver.GetDefaultAddressSpaces has no body. */
export interface DefaultAddressSpacesResponse {
  LocalDefaultAddressSpace: string;
  GlobalDefaultAddressSpace: string;
}

export interface RequestPoolRequest {
  AddressSpace: string;
  /** CIDR or "" (IPAM's choice). */
  Pool?: string;
  /** CIDR inside Pool or "". */
  SubPool?: string;
  Options?: Record<string, string> | null;
  V6?: boolean;
}
export interface RequestPoolResponse {
  PoolID: string;
  /** CIDR. */
  Pool: string;
  Data: Record<string, string>;
}

export interface ReleasePoolRequest {
  PoolID: string;
}

export interface RequestAddressRequest {
  PoolID: string;
  /** A bare IP or "" (any free address). */
  Address?: string;
  Options?: Record<string, string> | null;
}
export interface RequestAddressResponse {
  /** CIDR (address/prefix of the pool). */
  Address: string;
  Data: Record<string, string>;
}

export interface ReleaseAddressRequest {
  PoolID: string;
  Address: string;
}
