// CNI wire types, declared once for every spec version tsoverlay speaks (0.3.0 … 1.1.0).
// Shapes only: parsing and conversion live in version.ts, validation in env.ts/args.ts.

/** A CNI spec version string as it appears on the wire ("1.0.0"). */
export type CniVersion = string;

/** The CNI verbs (CNI_COMMAND values). */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** `dns` in a network config or a result (SPEC §1, §5). */
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** `ipam` section of a network config; everything but `type` is the IPAM plugin's own. */
export interface IpamConf {
  type: string;
  [key: string]: unknown;
}

/** One still-valid attachment in a GC request (SPEC §2 GC). */
export interface GcAttachment {
  containerID: string;
  ifname: string;
}

/** Port mapping as runtimes send it in `runtimeConfig.portMappings` (CNI CONVENTIONS). */
export interface PortMappingWire {
  hostPort: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
}

/** One entry of `runtimeConfig.ipRanges` (same shape as host-local `ranges`). */
export interface IpRangeWire {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** `runtimeConfig.bandwidth`: rates in bits/s, bursts in bits. */
export interface BandwidthWire {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** `runtimeConfig.dns` capability (note: different key names from the result's Dns). */
export interface RuntimeDnsWire {
  servers?: string[];
  searches?: string[];
  options?: string[];
  domain?: string;
}

/**
 * Capability arguments the runtime inserted (only those the plugin declared).
 * `aliases` is a list per the CNI conventions; podman sends `{ <network>: [...] }`.
 */
export interface RuntimeConfigWire {
  portMappings?: PortMappingWire[];
  ips?: string[];
  mac?: string;
  aliases?: string[] | Record<string, string[]>;
  dns?: RuntimeDnsWire;
  ipRanges?: IpRangeWire[][];
  bandwidth?: BandwidthWire;
  [key: string]: unknown;
}

/**
 * A plugin configuration object as received on stdin. Unknown keys are kept
 * (the index signature) and ignored; the runtime must pass them through (SPEC §1).
 */
export interface NetConf {
  cniVersion?: string;
  cniVersions?: string[];
  name: string;
  type: string;
  capabilities?: Record<string, boolean>;
  runtimeConfig?: RuntimeConfigWire;
  /** The previous plugin's result, in the config's version; parse with parsePrevResult(). */
  prevResult?: unknown;
  ipam?: IpamConf;
  dns?: Dns;
  /** Structured args (CNI CONVENTIONS "args"): `{ cni: { ips?, mac? } }`. */
  args?: { cni?: { ips?: string[]; mac?: string; [key: string]: unknown }; [key: string]: unknown };
  'cni.dev/valid-attachments'?: GcAttachment[];
  /** The same list under the name libcni also injects. */
  'cni.dev/attachments'?: GcAttachment[];
  [key: string]: unknown;
}

/** An interface in a 1.1.0 result; `mtu`, `socketPath`, `pciID` are 1.1.0 additions. */
export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

/** An address in a 1.x result. `interface` indexes `interfaces`; IPAM results omit it. */
export interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

/** A route; `mtu`…`scope` are 1.1.0 fields (kept on every version, as libcni does). */
export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

/**
 * The canonical (1.1.0-shaped) result every handler works with. `cniVersion` is
 * set only on the wire; conversion (version.ts) adds it.
 */
export interface Result {
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** 1.0.0 / 1.1.0 wire result. */
export interface Result1x extends Result {
  cniVersion: CniVersion;
}

/** An interface in a 0.3.x/0.4.0 result (no mtu/socketPath/pciID). */
export interface Interface04 {
  name: string;
  mac?: string;
  sandbox?: string;
}

/** An address in a 0.3.x/0.4.0 result: `version` is "4" or "6". */
export interface IpConfig04 {
  version: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}

/** 0.3.0 / 0.3.1 / 0.4.0 wire result. */
export interface Result04 {
  cniVersion: CniVersion;
  interfaces?: Interface04[];
  ips?: IpConfig04[];
  routes?: Route[];
  dns?: Dns;
}

/** Any wire result we emit. */
export type WireResult = Result1x | Result04;

/** The error object printed on stdout with a non-zero exit (SPEC §5 Error). */
export interface ErrorWire {
  cniVersion: CniVersion;
  code: number;
  msg: string;
  details?: string;
}

/** The VERSION answer. */
export interface VersionResult {
  cniVersion: CniVersion;
  supportedVersions: CniVersion[];
}
