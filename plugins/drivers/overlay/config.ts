// Parsing and validation of an overlay network's input and of the driver's own options into typed
// config. The network fields and the bridge-side options are the bridge driver's (parsed by its
// config.ts); the overlay adds the VNI, a default MTU of underlay − 50 and its own device names.
import * as cidr from '../../../ipam/cidr.js';
import { validateIp } from '../../../netlink/index.js';
import { parseBridgeNetwork, type BridgeNetworkConfig, type BridgeNetworkInput } from '../bridge/config.js';
import { invalidConfig } from '../common/errors.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { macFromAddress, shortHash } from '../common/naming.js';
import type { NetworkRecord } from '../common/records.js';
import { checkId, knownOptions, parseIntIn } from '../common/validate.js';

/** Network option keys (front ends map their own spellings onto these). */
export const OVERLAY_OPTION_KEYS = ['vni', 'mtu', 'bridge', 'icc', 'masquerade'] as const;

/** Defaults: Docker's overlay driver's (VXLAN over IPv4: 50 bytes of encapsulation). */
export const OVERLAY_DEFAULTS = Object.freeze({
  port: 4789,
  encapOverhead: 50,
  underlayMtu: 1500,
  /** Auto-allocated VNIs start here (Docker's overlay starts at 4096 too); given ones may be lower. */
  vniFirst: 4096,
  vniMax: 0xffffff,
  /** Seconds between a host's lease expiry and the release of its endpoints and addresses. */
  graceSeconds: 60,
});

/** What a front end hands to createNetwork (addresses already allocated by the IPAM). */
export type OverlayNetworkInput = BridgeNetworkInput;

/** A network input, validated, before a VNI and MTU are settled. */
export interface OverlayNetworkSpec {
  /** Bridge-side config (its `mtu` is only meaningful when `mtu` below is set). */
  bridge: BridgeNetworkConfig;
  /** Requested VNI (option `vni`); undefined = allocate one cluster-wide. */
  vni?: number;
  /** Requested MTU (option `mtu`); undefined = underlay MTU − 50 on the creating host. */
  mtu?: number;
  /** The recognised options as given (recorded). */
  options: Record<string, string | number | boolean>;
}

/** An overlay network as every host realises it (from its record). */
export interface OverlayNetworkConfig {
  id: string;
  /** Bridge-side config with the network's MTU. */
  bridge: BridgeNetworkConfig;
  vni: number;
  /** The VXLAN device's name on every host. */
  vxlan: string;
  /** The MAC every host's bridge carries, so the distributed gateway is one (IP, MAC) everywhere. */
  gatewayMac: string;
}

/** This host's overlay settings (the daemon's config, validated). */
export interface OverlayHostConfig {
  hostId: string;
  /** Underlay (VTEP) address; null = this host works alone (no remote peers). */
  advertise: string | null;
  /** UDP port this host's VXLAN devices listen on and peers send to (default 4789). */
  vxlanPort: number;
  /** Milliseconds after a peer's lease expired before its endpoints and addresses are released. */
  graceMs: number;
}

const BRIDGE_KEYS = new Set(['mtu', 'bridge', 'icc', 'masquerade']);

/** The default bridge of an overlay network: `tsob-` + 8 hex digits (the id's, else its hash's). */
export function overlayBridgeName(networkId: string): string {
  return `tsob-${hexHead(networkId)}`;
}

/** The VXLAN device of an overlay network: `tsvx-` + the same 8 hex digits. */
export function vxlanName(networkId: string): string {
  return `tsvx-${hexHead(networkId)}`;
}

function hexHead(id: string): string {
  const head = id.slice(0, 8);
  return /^[0-9a-f]{8}$/.test(head) ? head : shortHash(id, 8);
}

/**
 * Validate a network input. Throws DriverError 'invalid-config' naming key and value; unknown
 * option keys are logged (warn) and ignored, as the bridge driver does.
 */
export function parseOverlayNetwork(input: OverlayNetworkInput, log: DriverLogger = silentLogger): OverlayNetworkSpec {
  const id = checkId('id', (input as { id?: unknown } | null)?.id);
  const options = knownOptions(input.options, OVERLAY_OPTION_KEYS, (option, value) =>
    log.warn({ network: id, option, value }, 'ignoring unknown overlay driver option'),
  );
  const bridgeOptions = Object.fromEntries(Object.entries(options).filter(([k]) => BRIDGE_KEYS.has(k)));
  if (bridgeOptions.bridge === undefined) bridgeOptions.bridge = overlayBridgeName(id);
  const bridge = parseBridgeNetwork({ ...input, options: bridgeOptions }, log);
  const spec: OverlayNetworkSpec = { bridge, options };
  if (options.vni !== undefined) spec.vni = parseIntIn('vni', options.vni, 1, OVERLAY_DEFAULTS.vniMax);
  if (options.mtu !== undefined) spec.mtu = bridge.mtu;
  if (bridge.ipv6) throw invalidConfig('ipv6', true, 'overlay networks are IPv4 only in this version');
  if (!bridge.subnets.some((s) => s.gateway)) {
    // The distributed gateway is how containers leave; internal networks may go without one.
    if (!bridge.internal) throw invalidConfig('subnets', input.subnets, 'an overlay network needs a gateway unless it is internal');
  }
  return spec;
}

/** The MTU of a new network: the option, else the underlay's MTU minus the VXLAN overhead. */
export function networkMtu(spec: OverlayNetworkSpec, underlayMtu: number | undefined): number {
  return spec.mtu ?? (underlayMtu ?? OVERLAY_DEFAULTS.underlayMtu) - OVERLAY_DEFAULTS.encapOverhead;
}

/** The record of a new network (the driver adds createdAt). */
export function overlayRecord(spec: OverlayNetworkSpec, vni: number, mtu: number, createdAt: string): NetworkRecord {
  const b = spec.bridge;
  return {
    id: b.id,
    ...(b.name !== undefined ? { name: b.name } : {}),
    driver: 'overlay',
    scope: 'global',
    subnets: b.subnets.map((s) => s.cidr),
    gateways: b.subnets.flatMap((s) => (s.gateway ? [s.gateway] : [])),
    bridge: b.bridge,
    mtu,
    internal: b.internal,
    icc: b.icc,
    masquerade: b.masquerade,
    ipv6: false,
    vni,
    options: spec.options,
    createdAt,
  };
}

/** The fields two creations of one network must agree on (the VNI only when both ask for one). */
export function sameNetwork(rec: NetworkRecord, spec: OverlayNetworkSpec): string | undefined {
  const want = overlayRecord(spec, rec.vni ?? 0, spec.mtu ?? rec.mtu ?? 0, rec.createdAt);
  for (const f of ['driver', 'subnets', 'gateways', 'bridge', 'mtu', 'internal', 'icc', 'masquerade'] as const) {
    if (JSON.stringify(rec[f]) !== JSON.stringify(want[f])) return `${f} ${JSON.stringify(rec[f])}, not ${JSON.stringify(want[f])}`;
  }
  if (spec.vni !== undefined && rec.vni !== spec.vni) return `vni ${rec.vni}, not ${spec.vni}`;
  return undefined;
}

/** Rebuild the typed config of a stored overlay network. */
export function configFromRecord(rec: NetworkRecord): OverlayNetworkConfig {
  if (rec.driver !== 'overlay' || rec.vni === undefined || rec.mtu === undefined) {
    throw invalidConfig('network', rec.id, `is not an overlay network record (driver ${rec.driver})`);
  }
  const bridge = parseBridgeNetwork({
    id: rec.id,
    ...(rec.name !== undefined ? { name: rec.name } : {}),
    subnets: rec.subnets.map((s) => ({ subnet: s, ...gatewayOf(rec, s) })),
    internal: rec.internal,
    options: { bridge: rec.bridge ?? overlayBridgeName(rec.id), mtu: rec.mtu, icc: rec.icc, masquerade: rec.masquerade },
  });
  const gw = bridge.subnets.find((s) => s.family === 4 && s.gateway)?.gateway;
  return { id: rec.id, bridge, vni: rec.vni, vxlan: vxlanName(rec.id), gatewayMac: gatewayMac(gw ?? rec.id) };
}

function gatewayOf(rec: NetworkRecord, subnet: string): { gateway?: string } {
  const c = cidr.parseCidr(subnet);
  const gw = rec.gateways.find((g) => cidr.cidrContains(c, cidr.parseAddress(g)));
  return gw ? { gateway: gw } : {};
}

/**
 * The distributed gateway's MAC: locally administered, derived from the gateway address with a
 * prefix (02:47) no container MAC (02:42) uses. Networks without a gateway get one from their id.
 */
export function gatewayMac(gatewayOrId: string): string {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(gatewayOrId)) return macFromAddress(gatewayOrId).replace(/^02:42/, '02:47');
  const h = shortHash(gatewayOrId, 8);
  return `02:47:${h.match(/../g)!.join(':')}`;
}

/** The MAC a host gives its VXLAN devices (published in its host record as `vtepMac`). */
export function vtepMac(advertise: string): string {
  return macFromAddress(advertise).replace(/^02:42/, '02:56');
}

/** Validate this host's overlay settings. */
export function parseHostConfig(input: { hostId: unknown; advertise?: unknown; vxlanPort?: unknown; graceMs?: unknown }): OverlayHostConfig {
  const hostId = checkId('hostId', input.hostId);
  let advertise: string | null = null;
  if (input.advertise !== undefined && input.advertise !== null && input.advertise !== '') {
    let family: number | undefined;
    try {
      family = validateIp(input.advertise, 'advertise');
    } catch {
      family = undefined;
    }
    if (family !== 4) throw invalidConfig('advertise', input.advertise, 'expected an IPv4 address (the VXLAN underlay is IPv4)');
    advertise = input.advertise as string;
  }
  const vxlanPort = input.vxlanPort === undefined ? OVERLAY_DEFAULTS.port : parseIntIn('vxlanPort', input.vxlanPort, 1, 65535);
  const graceMs = input.graceMs === undefined ? OVERLAY_DEFAULTS.graceSeconds * 1000 : parseIntIn('graceMs', input.graceMs, 0, 7 * 24 * 3600 * 1000);
  return { hostId, advertise, vxlanPort, graceMs };
}
