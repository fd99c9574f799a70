// Typed options for writes and typed records for reads of the netlink/ layer.
// Only the attributes tsoverlay drivers use are modelled; `raw` keeps iproute2's JSON for the rest.
import type { Family } from './validate.js';

/** Attributes any new link may carry. `netns` creates it directly in that namespace (path). */
export interface LinkCommon {
  name: string;
  mtu?: number;
  mac?: string;
  /** Link group (1–4294967295) for mass deletion with `linkDeleteGroup`. */
  group?: number;
  /** Enslave to this bridge at creation (looked up by name in the handle's namespace). */
  master?: string;
  /**
   * Enslave to the bridge with this ifindex in the namespace where the link is created; unlike
   * `master` it combines with `netns`: a container-side batch can create the host end already
   * enslaved, so one process does the whole container interface.
   */
  masterIndex?: number;
  up?: boolean;
  /** Create the link inside this namespace (path) instead of the handle's. */
  netns?: string;
}

export interface BridgeSpec extends LinkCommon {
  kind: 'bridge';
  /** STP on/off (default: kernel default, off). */
  stp?: boolean;
  vlanFiltering?: boolean;
  /** FDB ageing time in seconds. */
  ageingTime?: number;
}

/** The far end of a veth pair; `netns` puts it straight into another namespace (e.g. the container's). */
export interface VethPeer {
  name: string;
  netns?: string;
  mtu?: number;
  mac?: string;
  group?: number;
  // No `up`: the kernel cannot open a peer before the pair is joined (ENOTCONN); set it up afterwards.
}

export interface VethSpec extends LinkCommon {
  kind: 'veth';
  peer: VethPeer;
}

export interface VxlanSpec extends LinkCommon {
  kind: 'vxlan';
  /** VXLAN network identifier, 0–16777215. */
  vni: number;
  /** Local VTEP address. */
  local?: string;
  /** UDP destination port (default 4789 here, not the kernel's legacy 8472). */
  port?: number;
  /** MAC learning (default false: peers are programmed as static FDB/neighbour entries). */
  learning?: boolean;
  /** Underlay device. */
  dev?: string;
  ttl?: number;
  /** Answer ARP/ND locally from the neighbour table (`proxy`). */
  proxy?: boolean;
}

export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';

export interface MacvlanSpec extends LinkCommon {
  kind: 'macvlan';
  /** Parent (lower) device in the handle's namespace. */
  parent: string;
  mode?: MacvlanMode;
}

/** What `linkAdd` creates. */
export type LinkSpec = BridgeSpec | VethSpec | VxlanSpec | MacvlanSpec;

/** Changes to an existing link; all optional, applied in one `ip link set`. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Enslave to this bridge; null releases it (`nomaster`). */
  master?: string | null;
  /** Rename (kernels before 6.x refuse while the link is up: EBUSY; add `up: false`). */
  name?: string;
  /** Move to another namespace (path); addresses and routes do not follow. */
  netns?: string;
  group?: number;
}

/** Bridge-port flags (`ip link set dev X type bridge_slave …`). */
export interface BridgePortChange {
  hairpin?: boolean;
  learning?: boolean;
  flood?: boolean;
  neighSuppress?: boolean;
  isolated?: boolean;
}

export type RouteScope = 'global' | 'link' | 'host' | 'site' | 'nowhere';

export interface AddrOptions {
  /** Skip IPv6 duplicate address detection (containers' addresses are allocated, not guessed). */
  noDad?: boolean;
  scope?: RouteScope;
}

export interface RouteSpec {
  /** 'default' or a CIDR; the family of `default` follows `via` (IPv4 when there is none). */
  dst: string;
  via?: string;
  dev?: string;
  /** Gateway reachable on `dev` even though no prefix covers it. */
  onlink?: boolean;
  scope?: RouteScope;
  /** 'main', 'local' or a table number. */
  table?: number | 'main' | 'local';
  metric?: number;
  /** Preferred source address. */
  src?: string;
  mtu?: number;
  /** Force the family of a 'default' route without gateway. */
  family?: Family;
}

export interface NeighSpec {
  dst: string;
  dev: string;
  /** Required for add/replace. */
  lladdr?: string;
  /** Default true: a permanent (static) entry that never expires or is probed. */
  permanent?: boolean;
}

export interface FdbSpec {
  mac: string;
  dev: string;
  /** Remote VTEP (VXLAN `self` entries). */
  dst?: string;
  /** 'self' = the device's own table (VXLAN); 'master' = the bridge's table. Default: 'self' if dst is set, else 'master'. */
  target?: 'self' | 'master';
  /** 'permanent' (default for self) or 'static' (default for master). */
  state?: 'permanent' | 'static';
  vni?: number;
  port?: number;
}

/** One link as the kernel reports it. */
export interface Link {
  index: number;
  name: string;
  /** 'veth', 'bridge', 'vxlan', 'macvlan', … (undefined for plain devices like lo). */
  kind?: string;
  mtu: number;
  mac?: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operational state: 'UP', 'DOWN', 'LOWERLAYERDOWN', 'UNKNOWN', … */
  operState: string;
  flags: string[];
  master?: string;
  /** Link group number (0 = default). */
  group: number;
  /** The peer/lower link's name when it is in the same namespace. */
  parent?: string;
  /** Set when the peer/lower link lives in another namespace. */
  linkNetnsId?: number;
  vxlan?: { vni: number; local?: string; port?: number; learning: boolean; dev?: string };
  macvlan?: { mode: string };
  /** Present when enslaved to a bridge. */
  bridgePort?: { hairpin: boolean; learning: boolean; state?: string; neighSuppress: boolean };
  raw: Record<string, unknown>;
}

export interface Address {
  dev: string;
  family: Family;
  address: string;
  prefixLen: number;
  /** `address/prefixLen`. */
  cidr: string;
  scope: string;
  raw: Record<string, unknown>;
}

export interface Route {
  family: Family;
  /** 'default' or a CIDR as printed by the kernel (host routes without '/len'). */
  dst: string;
  via?: string;
  dev?: string;
  /** 'main' when the kernel omits it. */
  table: string;
  scope?: string;
  protocol?: string;
  metric?: number;
  src?: string;
  type?: string;
  onlink: boolean;
  raw: Record<string, unknown>;
}

export interface Neighbour {
  family: Family;
  dst: string;
  dev: string;
  lladdr?: string;
  /** e.g. ['PERMANENT'], ['REACHABLE'], ['FAILED']. */
  state: string[];
  permanent: boolean;
  raw: Record<string, unknown>;
}

export interface FdbEntry {
  mac: string;
  dev: string;
  dst?: string;
  /** The bridge when the entry is in a bridge's table. */
  master?: string;
  self: boolean;
  /** 'permanent', 'static', or undefined for learned entries. */
  state?: string;
  vni?: number;
  raw: Record<string, unknown>;
}
