// What a driver needs from the firewall (proxy/): per-network rules (masquerade, FORWARD accepts,
// ICC, internal, isolation between networks) and published ports. The proxy's facade satisfies
// it; drivers never build a rule themselves. All values are validated by the driver first.
import type { Protocol } from './records.js';

/** A network as the firewall sees it. */
export interface FirewallNetwork {
  id: string;
  bridge: string;
  /** Canonical CIDRs with their family. */
  subnets: { cidr: string; family: 4 | 6 }[];
  /** MASQUERADE traffic from the subnets leaving by another interface. */
  masquerade: boolean;
  /** Accept traffic between containers of this network (false: drop it). */
  icc: boolean;
  /** No traffic in or out of the network except to its own gateway. */
  internal: boolean;
  /** Default host address for published IPv4 ports without one. */
  hostBindingIpv4?: string;
}

/** A port to publish, before a host port is chosen. */
export interface PortMappingRequest {
  proto: Protocol;
  containerPort: number;
  /** '' = every host address (of the families the endpoint has); else one address. */
  hostIp: string;
  /** 0 = any free port; else the first acceptable host port. */
  hostPort: number;
  /** Last acceptable host port (= hostPort for one port; 0 with hostPort 0). */
  hostPortEnd: number;
}

/** A published port after allocation. */
export interface PortBinding {
  proto: Protocol;
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** The firewall operations a driver calls. Every method is idempotent. */
export interface FirewallPort {
  /** Create or update a network's rules. */
  setNetwork(net: FirewallNetwork): Promise<void>;
  /** Remove a network's rules (missing = success). */
  removeNetwork(networkId: string): Promise<void>;
  /** Reserve host ports and add DNAT rules for an endpoint; returns what was bound. */
  publish(endpointId: string, req: { networkId: string; containerIps: string[]; mappings: PortMappingRequest[] }): Promise<PortBinding[]>;
  /** Remove an endpoint's mappings and release its host ports (missing = success). */
  unpublish(endpointId: string): Promise<void>;
}
