// Parsing and validation of a bridge network's and an endpoint's input into typed config.
// Values may arrive as strings (Docker `-o k=v`) or JSON values (CNI); a bad one is refused with
// a message naming key and value; unknown option keys are ignored and logged.
import * as cidr from '../../../ipam/cidr.js';
import { validateIfName, validateMac } from '../../../netlink/index.js';
import { objectName } from '../../../proxy/validate.js';
import { DriverError, invalidConfig } from '../common/errors.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { macFromAddress, shortHash, vethNames } from '../common/naming.js';
import type { DriverName, EndpointRecord, ExposedPortRecord, NetworkRecord } from '../common/records.js';
import { checkId, checkName, exposedPorts, knownOptions, nameList, parseBool, parseIntIn } from '../common/validate.js';

/** Driver option keys (front ends map their own spellings onto these). */
export const BRIDGE_OPTION_KEYS = ['bridge', 'mtu', 'icc', 'masquerade', 'hairpin', 'hostBindingIpv4'] as const;
export type BridgeOptionKey = (typeof BRIDGE_OPTION_KEYS)[number];

/** Defaults: Docker's bridge driver's. */
export const BRIDGE_DEFAULTS = Object.freeze({ mtu: 1500, icc: true, masquerade: true, hairpin: false });

/** What a front end hands to createNetwork: addresses already allocated by the IPAM. */
export interface BridgeNetworkInput {
  /** Network id (Docker network ID, CNI network name): 1–128 of [A-Za-z0-9_.:@-], alphanumeric first. */
  id: string;
  name?: string;
  /** Subnets with their gateway (bare IP, or address/prefix as Docker sends it). */
  subnets: { subnet: string; gateway?: string }[];
  /** No route out, no masquerade, not reachable from outside. */
  internal?: boolean;
  /** Default: true when a subnet is IPv6. */
  ipv6?: boolean;
  /** Driver options by the keys in BRIDGE_OPTION_KEYS; strings or JSON values. */
  options?: Readonly<Record<string, unknown>>;
}

/** One subnet of a network, canonical. */
export interface SubnetConfig {
  /** "10.1.0.0/24". */
  cidr: string;
  family: 4 | 6;
  prefixLen: number;
  /** Bare gateway address inside the subnet, if the network has one. */
  gateway?: string;
}

/** A bridge network, validated. */
export interface BridgeNetworkConfig {
  id: string;
  name?: string;
  bridge: string;
  mtu: number;
  subnets: SubnetConfig[];
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  ipv6: boolean;
  hairpin: boolean;
  hostBindingIpv4?: string;
  /** The recognised options as given (recorded for inspection). */
  options: Record<string, string | number | boolean>;
}

/** What a front end hands to createEndpoint. */
export interface EndpointInput {
  id: string;
  /** Allocated addresses, "10.1.0.2/24" or bare (the subnet's prefix is used). */
  addresses: string[];
  /** Keep the engine's MAC when it set one; otherwise one is derived from the first address. */
  mac?: string;
  containerId?: string;
  names?: string[];
  aliases?: string[];
  exposed?: ExposedPortRecord[];
}

/** An endpoint input, validated against its network. */
export interface EndpointConfig {
  id: string;
  /** Canonical "addr/prefix". */
  addresses: { cidr: string; address: string; family: 4 | 6 }[];
  mac?: string;
  containerId?: string;
  names: string[];
  aliases: string[];
  exposed: ExposedPortRecord[];
}

/**
 * Network and endpoint ids name firewall rules and published ports (proxy/validate objectName):
 * refuse here what the firewall would refuse, before any bridge or veth is made.
 */
function ruleId(key: string, v: unknown): string {
  const id = checkId(key, v);
  try {
    return objectName(id, key);
  } catch {
    throw invalidConfig(key, v, 'expected 1–128 characters of [A-Za-z0-9_.:@-], starting with a letter or digit');
  }
}

function bridgeName(key: string, v: unknown): string {
  if (typeof v === 'string' && v.includes('/')) throw invalidConfig(key, v, "must not contain '/'");
  try {
    return validateIfName(v, key);
  } catch (err) {
    throw invalidConfig(key, v, (err as Error).message.replace(/^invalid .*?: /, ''));
  }
}

function ipv4(key: string, v: unknown): string {
  const a = addr(key, v);
  if (!a.includes('.')) throw invalidConfig(key, v, 'expected an IPv4 address');
  return a;
}

function addr(key: string, v: unknown): string {
  try {
    return cidr.formatAddr(cidr.parseAddress(v, key));
  } catch {
    throw invalidConfig(key, v, 'not an IP address');
  }
}

/** The default bridge name: `tsbr-` + the first 8 characters of a hex id, else 8 of its hash. */
export function defaultBridgeName(networkId: string): string {
  const head = networkId.slice(0, 8);
  return `tsbr-${/^[0-9a-f]{8}$/.test(head) ? head : shortHash(networkId, 8)}`;
}

function parseSubnet(i: number, s: unknown): SubnetConfig {
  const key = `subnets[${i}]`;
  if (typeof s !== 'object' || s === null) throw invalidConfig(key, s, 'expected {subnet, gateway?}');
  const { subnet, gateway } = s as { subnet?: unknown; gateway?: unknown };
  let c: cidr.Cidr;
  try {
    c = cidr.parseCidr(subnet, `${key}.subnet`, { allowHostBits: true });
  } catch {
    throw invalidConfig(`${key}.subnet`, subnet, 'expected a CIDR like 10.1.0.0/24');
  }
  const out: SubnetConfig = { cidr: cidr.formatCidr(c), family: c.family, prefixLen: c.prefix };
  if (gateway !== undefined && gateway !== '') {
    const gwText = typeof gateway === 'string' && gateway.includes('/') ? gateway.slice(0, gateway.indexOf('/')) : gateway;
    const gw = addr(`${key}.gateway`, gwText);
    if (!cidr.cidrContains(c, cidr.parseAddress(gw))) throw invalidConfig(`${key}.gateway`, gateway, `outside ${out.cidr}`);
    out.gateway = gw;
  }
  return out;
}

/** Parse the network-level fields (everything but options). */
function parseNetworkFields(input: BridgeNetworkInput): Pick<BridgeNetworkConfig, 'id' | 'name' | 'subnets' | 'internal' | 'ipv6'> {
  if (typeof input !== 'object' || input === null) throw invalidConfig('network', input, 'expected an object');
  const id = ruleId('id', input.id);
  const name = checkName('name', input.name);
  if (!Array.isArray(input.subnets) || input.subnets.length === 0) throw invalidConfig('subnets', input.subnets, 'at least one subnet is required');
  const subnets = input.subnets.map((s, i) => parseSubnet(i, s));
  for (let i = 0; i < subnets.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = cidr.parseCidr(subnets[i]!.cidr);
      const b = cidr.parseCidr(subnets[j]!.cidr);
      if (cidr.cidrsOverlap(a, b)) throw invalidConfig(`subnets[${i}].subnet`, subnets[i]!.cidr, `overlaps ${subnets[j]!.cidr}`);
    }
  }
  const internal = input.internal === undefined ? false : parseBool('internal', input.internal);
  const hasV6 = subnets.some((s) => s.family === 6);
  const ipv6 = input.ipv6 === undefined ? hasV6 : parseBool('ipv6', input.ipv6);
  if (ipv6 && !hasV6) throw invalidConfig('ipv6', input.ipv6, 'IPv6 is enabled but no subnet is IPv6');
  if (!ipv6 && hasV6) throw invalidConfig('ipv6', input.ipv6, 'a subnet is IPv6 but IPv6 is disabled');
  return { id, ...(name !== undefined ? { name } : {}), subnets, internal, ipv6 };
}

/**
 * Validate a network input into a BridgeNetworkConfig. Throws DriverError 'invalid-config'
 * naming the key and value; unknown option keys are logged (warn) and ignored.
 */
export function parseBridgeNetwork(input: BridgeNetworkInput, log: DriverLogger = silentLogger): BridgeNetworkConfig {
  const base = parseNetworkFields(input);
  const options = knownOptions(input.options, BRIDGE_OPTION_KEYS, (option, value) =>
    log.warn({ network: base.id, option, value }, 'ignoring unknown bridge driver option'),
  );
  const cfg: BridgeNetworkConfig = {
    ...base,
    bridge: options.bridge === undefined ? defaultBridgeName(base.id) : bridgeName('bridge', options.bridge),
    mtu: options.mtu === undefined ? BRIDGE_DEFAULTS.mtu : parseIntIn('mtu', options.mtu, 68, 65535),
    icc: options.icc === undefined ? BRIDGE_DEFAULTS.icc : parseBool('icc', options.icc),
    masquerade: options.masquerade === undefined ? BRIDGE_DEFAULTS.masquerade : parseBool('masquerade', options.masquerade),
    hairpin: options.hairpin === undefined ? BRIDGE_DEFAULTS.hairpin : parseBool('hairpin', options.hairpin),
    options,
  };
  if (options.hostBindingIpv4 !== undefined) cfg.hostBindingIpv4 = ipv4('hostBindingIpv4', options.hostBindingIpv4);
  // The kernel turns IPv6 off on a link below IPV6_MIN_MTU: the gateway could not be added.
  if (cfg.ipv6 && cfg.mtu < 1280) throw invalidConfig('mtu', options.mtu, 'an IPv6 network needs an MTU of at least 1280');
  // An internal network never leaves the host: masquerading it would contradict that.
  if (cfg.internal) cfg.masquerade = false;
  return cfg;
}

/** The record fields a config determines (the driver adds driver, scope, hostId, createdAt). */
export function networkRecordFields(cfg: BridgeNetworkConfig): Omit<NetworkRecord, 'driver' | 'scope' | 'hostId' | 'createdAt'> {
  return {
    id: cfg.id,
    ...(cfg.name !== undefined ? { name: cfg.name } : {}),
    subnets: cfg.subnets.map((s) => s.cidr),
    gateways: cfg.subnets.flatMap((s) => (s.gateway ? [s.gateway] : [])),
    bridge: cfg.bridge,
    mtu: cfg.mtu,
    internal: cfg.internal,
    icc: cfg.icc,
    masquerade: cfg.masquerade,
    ipv6: cfg.ipv6,
    hairpin: cfg.hairpin,
    ...(cfg.hostBindingIpv4 !== undefined ? { hostBindingIpv4: cfg.hostBindingIpv4 } : {}),
    options: cfg.options,
  };
}

/** Rebuild the typed config of a stored network (reconcile, join). */
export function configFromRecord(rec: NetworkRecord): BridgeNetworkConfig {
  const subnets: SubnetConfig[] = rec.subnets.map((s) => {
    const c = cidr.parseCidr(s);
    const gateway = rec.gateways.find((g) => cidr.cidrContains(c, cidr.parseAddress(g)));
    return { cidr: s, family: c.family, prefixLen: c.prefix, ...(gateway ? { gateway } : {}) };
  });
  return {
    id: rec.id,
    ...(rec.name !== undefined ? { name: rec.name } : {}),
    bridge: rec.bridge ?? defaultBridgeName(rec.id),
    mtu: rec.mtu ?? BRIDGE_DEFAULTS.mtu,
    subnets,
    internal: rec.internal,
    icc: rec.icc,
    masquerade: rec.masquerade,
    ipv6: rec.ipv6,
    hairpin: rec.hairpin ?? BRIDGE_DEFAULTS.hairpin,
    ...(rec.hostBindingIpv4 !== undefined ? { hostBindingIpv4: rec.hostBindingIpv4 } : {}),
    options: rec.options,
  };
}

/** Validate an endpoint input against its network's subnets. */
export function parseEndpoint(input: EndpointInput, net: BridgeNetworkConfig): EndpointConfig {
  if (typeof input !== 'object' || input === null) throw invalidConfig('endpoint', input, 'expected an object');
  const id = ruleId('endpoint id', input.id);
  if (!Array.isArray(input.addresses) || input.addresses.length === 0) {
    throw invalidConfig('addresses', input.addresses, 'at least one allocated address is required');
  }
  const addresses = input.addresses.map((a, i) => endpointAddress(`addresses[${i}]`, a, net));
  const out: EndpointConfig = {
    id,
    addresses,
    names: nameList('names', input.names),
    aliases: nameList('aliases', input.aliases),
    exposed: exposedPorts('exposed', input.exposed),
  };
  if (input.mac !== undefined && input.mac !== '') {
    try {
      out.mac = validateMac(input.mac, 'mac');
    } catch {
      throw invalidConfig('mac', input.mac, 'expected six colon-separated hex octets');
    }
    if ((parseInt(out.mac.slice(0, 2), 16) & 1) === 1) throw invalidConfig('mac', input.mac, 'is a multicast address');
  }
  if (input.containerId !== undefined) out.containerId = checkId('containerId', input.containerId);
  return out;
}

function endpointAddress(key: string, a: unknown, net: BridgeNetworkConfig): EndpointConfig['addresses'][number] {
  const text = typeof a === 'string' ? a : '';
  const slash = text.indexOf('/');
  const address = addr(key, slash < 0 ? a : text.slice(0, slash));
  const parsed = cidr.parseAddress(address);
  const subnet = net.subnets.find((s) => cidr.cidrContains(cidr.parseCidr(s.cidr), parsed));
  if (!subnet) throw invalidConfig(key, a, `not inside any subnet of network ${net.id} (${net.subnets.map((s) => s.cidr).join(', ')})`);
  if (subnet.gateway === address) throw invalidConfig(key, a, "is the network's gateway");
  const prefixLen = slash < 0 ? subnet.prefixLen : parseIntIn(key, text.slice(slash + 1), 0, subnet.family === 4 ? 32 : 128);
  return { cidr: `${address}/${prefixLen}`, address, family: subnet.family };
}

/**
 * The record of a new endpoint of `driver` on `hostId`: its MAC is the engine's, else derived
 * from its first IPv4 address, so peers (overlay) can program it before its first packet.
 */
export function endpointRecord(driver: DriverName, ep: EndpointConfig, networkId: string, hostId: string, createdAt: string): EndpointRecord {
  const first = ep.addresses.find((a) => a.family === 4) ?? ep.addresses[0]!;
  return {
    id: ep.id,
    networkId,
    hostId,
    driver,
    ...(ep.containerId !== undefined ? { containerId: ep.containerId } : {}),
    names: ep.names,
    aliases: ep.aliases,
    addresses: ep.addresses.map((a) => a.cidr),
    mac: ep.mac ?? macFromAddress(first.address),
    hostVeth: vethNames(ep.id).host,
    ports: [],
    exposed: ep.exposed,
    createdAt,
  };
}

/**
 * A create that found the endpoint already stored is idempotent only when it is the same
 * endpoint: same addresses, same host, and the same MAC when one was asked for.
 */
export function assertSameEndpoint(stored: EndpointRecord, wanted: EndpointRecord, askedMac: string | undefined): void {
  const same = stored.addresses.join() === wanted.addresses.join() && (askedMac === undefined || askedMac === stored.mac);
  if (!same || stored.hostId !== wanted.hostId) {
    throw new DriverError('endpoint-exists', `endpoint ${wanted.id} already exists on network ${wanted.networkId} with other addresses or on another host`);
  }
}
