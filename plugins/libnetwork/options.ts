// Parses the engine's untyped option maps (network, endpoint, IPAM pool and address options)
// into typed values at the edge. Bad values throw a bad-request error naming key and value;
// unknown keys are not errors: they are listed in `unknown` so the caller can log them.

import type {
  AddressOptions,
  BridgeOptions,
  EndpointOptions,
  ExposedPort,
  NetworkOptions,
  PoolOptions,
  PortMapping,
  Protocol,
} from './backend.js';
import { badOption } from './errors.js';
import {
  asRecord,
  parseBase64Mac,
  parseBool,
  parseIfName,
  parseIntIn,
  parseIp,
  parseMac,
  type Fail,
} from './values.js';

/** The option keys the engine uses (libnetwork netlabel, bridge labels, ipamapi). */
export const KEYS = {
  generic: 'com.docker.network.generic',
  internal: 'com.docker.network.internal',
  enableIPv6: 'com.docker.network.enable_ipv6',
  mtu: 'com.docker.network.driver.mtu',
  bridgeName: 'com.docker.network.bridge.name',
  enableIcc: 'com.docker.network.bridge.enable_icc',
  enableIpMasquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  hostBindingIpv4: 'com.docker.network.bridge.host_binding_ipv4',
  containerIfacePrefix: 'com.docker.network.container_iface_prefix',
  portMap: 'com.docker.network.portmap',
  exposedPorts: 'com.docker.network.endpoint.exposedports',
  macAddress: 'com.docker.network.endpoint.macaddress',
  ipamSerial: 'com.docker.network.ipam.serial',
  requestAddressType: 'RequestAddressType',
  gateway: 'com.docker.network.gateway',
} as const;

/**
 * A parsed value plus the keys this layer did not recognise (for a log line, never an error).
 * String-valued unknown keys are still handed on (driverOpts / extra) for the backend's own
 * validation; other unknown values are dropped.
 */
export interface Parsed<T> {
  value: T;
  unknown: string[];
}

const PROTOCOLS: ReadonlyMap<unknown, Protocol> = new Map<unknown, Protocol>([
  [6, 'tcp'],
  [17, 'udp'],
  [132, 'sctp'],
  ['tcp', 'tcp'],
  ['udp', 'udp'],
  ['sctp', 'sctp'],
]);

const optionFail = (key: string, value: unknown): Fail => (why) => badOption(key, value, why);

/** Options of CreateNetwork: top-level flags plus the `-o` map in `com.docker.network.generic`. */
export function parseNetworkOptions(options: unknown): Parsed<NetworkOptions> {
  const top = asRecord(options, optionFail('Options', options)) ?? {};
  const unknownKeys: string[] = [];
  const value: NetworkOptions = { internal: false, enableIPv6: false, bridge: {}, driverOpts: {} };
  for (const [key, raw] of Object.entries(top)) {
    if (key === KEYS.internal) value.internal = parseBool(raw, optionFail(key, raw));
    else if (key === KEYS.enableIPv6) value.enableIPv6 = parseBool(raw, optionFail(key, raw));
    else if (key === KEYS.generic) parseGeneric(raw, value, unknownKeys);
    else unknownKeys.push(key);
  }
  return { value, unknown: unknownKeys };
}

function parseGeneric(raw: unknown, into: NetworkOptions, unknownKeys: string[]): void {
  const generic = asRecord(raw, optionFail(KEYS.generic, raw)) ?? {};
  const bridge: BridgeOptions = {};
  const driverOpts: Record<string, string> = {};
  for (const [key, v] of Object.entries(generic)) {
    const fail = optionFail(key, v);
    switch (key) {
      case KEYS.mtu:
        into.mtu = parseIntIn(v, 68, 65535, fail);
        break;
      case KEYS.bridgeName:
        bridge.name = parseIfName(v, fail);
        break;
      case KEYS.enableIcc:
        bridge.enableIcc = parseBool(v, fail);
        break;
      case KEYS.enableIpMasquerade:
        bridge.enableIpMasquerade = parseBool(v, fail);
        break;
      case KEYS.hostBindingIpv4:
        bridge.hostBindingIp = parseIp(v, fail);
        break;
      case KEYS.containerIfacePrefix:
        // The engine appends an index, so leave room for it inside the 15-byte limit.
        into.containerIfacePrefix = parseIfName(v, fail, 12);
        break;
      case KEYS.internal:
        into.internal = parseBool(v, fail);
        break;
      case KEYS.enableIPv6:
        into.enableIPv6 = parseBool(v, fail);
        break;
      default:
        if (typeof v === 'string') driverOpts[key] = v;
        unknownKeys.push(`${KEYS.generic}.${key}`);
    }
  }
  into.bridge = bridge;
  into.driverOpts = driverOpts;
}

/** Options of CreateEndpoint, Join and ProgramExternalConnectivity. */
export function parseEndpointOptions(options: unknown): Parsed<EndpointOptions> {
  const top = asRecord(options, optionFail('Options', options)) ?? {};
  const unknownKeys: string[] = [];
  const value: EndpointOptions = { exposedPorts: [], portMappings: [], driverOpts: {} };
  const driverOpts: Record<string, string> = {};
  for (const [key, raw] of Object.entries(top)) {
    if (key === KEYS.portMap) value.portMappings = parsePortMap(raw);
    else if (key === KEYS.exposedPorts) value.exposedPorts = parseExposedPorts(raw);
    else if (key === KEYS.macAddress) value.macAddress = parseBase64Mac(raw, optionFail(key, raw));
    else {
      if (typeof raw === 'string') driverOpts[key] = raw;
      unknownKeys.push(key);
    }
  }
  value.driverOpts = driverOpts;
  return { value, unknown: unknownKeys };
}

function asArray(key: string, raw: unknown): unknown[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw badOption(key, raw, 'must be a JSON array');
  return raw;
}

function parseProto(key: string, entry: unknown, raw: unknown): Protocol {
  const proto = PROTOCOLS.get(raw);
  if (!proto) throw badOption(key, entry, `Proto ${JSON.stringify(raw)} is not 6 (tcp), 17 (udp) or 132 (sctp)`);
  return proto;
}

function optionalIp(key: string, entry: unknown, field: string, raw: unknown): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  return parseIp(raw, (why) => badOption(key, entry, `${field} ${why}`));
}

function port(key: string, entry: unknown, field: string, raw: unknown, min: number): number {
  return parseIntIn(raw, min, 65535, (why) => badOption(key, entry, `${field} ${why}`));
}

/** `com.docker.network.portmap`: [{Proto, IP, Port, HostIP, HostPort, HostPortEnd}]. */
export function parsePortMap(raw: unknown): PortMapping[] {
  const key = KEYS.portMap;
  return asArray(key, raw).map((entry) => {
    const e = asRecord(entry, optionFail(key, entry));
    if (!e) throw badOption(key, entry, 'each entry must be a JSON object');
    const hostPort = e.HostPort === undefined ? 0 : port(key, entry, 'HostPort', e.HostPort, 0);
    let hostPortEnd = e.HostPortEnd === undefined ? 0 : port(key, entry, 'HostPortEnd', e.HostPortEnd, 0);
    if (hostPortEnd === 0) hostPortEnd = hostPort;
    if (hostPortEnd < hostPort) throw badOption(key, entry, 'HostPortEnd is below HostPort');
    if (hostPort === 0 && hostPortEnd !== 0) throw badOption(key, entry, 'HostPortEnd without HostPort');
    return {
      proto: parseProto(key, entry, e.Proto),
      containerIp: optionalIp(key, entry, 'IP', e.IP),
      containerPort: port(key, entry, 'Port', e.Port, 1),
      hostIp: optionalIp(key, entry, 'HostIP', e.HostIP),
      hostPort,
      hostPortEnd,
    };
  });
}

/** `com.docker.network.endpoint.exposedports`: [{Proto, Port}]. */
export function parseExposedPorts(raw: unknown): ExposedPort[] {
  const key = KEYS.exposedPorts;
  return asArray(key, raw).map((entry) => {
    const e = asRecord(entry, optionFail(key, entry));
    if (!e) throw badOption(key, entry, 'each entry must be a JSON object');
    return { proto: parseProto(key, entry, e.Proto), port: port(key, entry, 'Port', e.Port, 1) };
  });
}

/** `--ipam-opt` of RequestPool (a string map). */
export function parsePoolOptions(options: unknown): Parsed<PoolOptions> {
  const top = asRecord(options, optionFail('Options', options)) ?? {};
  const unknownKeys: string[] = [];
  const value: PoolOptions = { extra: {} };
  const extra: Record<string, string> = {};
  for (const [key, raw] of Object.entries(top)) {
    if (key === KEYS.ipamSerial) value.serial = parseBool(raw, optionFail(key, raw));
    else {
      if (typeof raw === 'string') extra[key] = raw;
      unknownKeys.push(key);
    }
  }
  value.extra = extra;
  return { value, unknown: unknownKeys };
}

/** Options of RequestAddress: the gateway marker, the MAC (when required), serial allocation. */
export function parseAddressOptions(options: unknown): Parsed<AddressOptions> {
  const top = asRecord(options, optionFail('Options', options)) ?? {};
  const unknownKeys: string[] = [];
  const value: AddressOptions = { extra: {} };
  const extra: Record<string, string> = {};
  for (const [key, raw] of Object.entries(top)) {
    const fail = optionFail(key, raw);
    if (key === KEYS.requestAddressType) {
      if (raw !== KEYS.gateway) throw fail(`the only address type is ${KEYS.gateway}`);
      value.type = 'gateway';
    } else if (key === KEYS.macAddress) {
      // The engine sends the MAC's text form here (unlike the base64 of endpoint options).
      value.macAddress = typeof raw === 'string' && raw.length === 8 ? parseBase64Mac(raw, fail) : parseMac(raw, fail);
    } else if (key === KEYS.ipamSerial) {
      value.serial = parseBool(raw, fail);
    } else {
      if (typeof raw === 'string') extra[key] = raw;
      unknownKeys.push(key);
    }
  }
  value.extra = extra;
  return { value, unknown: unknownKeys };
}
