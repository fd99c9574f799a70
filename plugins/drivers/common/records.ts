// The network and endpoint records every driver writes (one JSON value per key, keys from
// store/keys.ts) and that DNS, the proxy and the CLI read. Decoding checks the shape, so a
// corrupt or foreign value is a clear error instead of an undefined field deep inside a verb.
import { DriverError } from './errors.js';

/** Drivers that write records. */
export type DriverName = 'bridge' | 'overlay' | 'host';
export type Protocol = 'tcp' | 'udp' | 'sctp';

/** One network (`keys.network(id)`). */
export interface NetworkRecord {
  id: string;
  /** Human name (Docker network name, CNI network name), when known. */
  name?: string;
  driver: DriverName;
  /** 'local': one host's network (bridge, host); 'global': spans hosts (overlay). */
  scope: 'local' | 'global';
  /** For local-scope networks: the host whose kernel holds it. */
  hostId?: string;
  /** Canonical network CIDRs ("10.1.0.0/24", "fd00:1::/64"). */
  subnets: string[];
  /** Gateway addresses (bare IPs), each inside one of `subnets`. */
  gateways: string[];
  /** The Linux bridge on the host (bridge, overlay). */
  bridge?: string;
  mtu?: number;
  internal: boolean;
  /** Container-to-container traffic allowed on this network. */
  icc: boolean;
  /** Outbound traffic masqueraded. */
  masquerade: boolean;
  ipv6: boolean;
  hairpin?: boolean;
  /** Default host address for published IPv4 ports without one. */
  hostBindingIpv4?: string;
  /** Overlay VXLAN network identifier. */
  vni?: number;
  /** Bridge networks on a user's existing bridge: its MTU and up state before (restored on delete). */
  adopted?: { mtu: number; up: boolean };
  /** The driver options as given (for inspection; the typed fields above are what counts). */
  options: Record<string, string | number | boolean>;
  /**
   * ISO 8601 time a `network rm` began (it checks for endpoints under this mark, so an endpoint
   * recorded meanwhile backs out); a mark older than REMOVAL_MARK_MS was left by a crash.
   */
  removing?: string;
  /** ISO 8601. */
  createdAt: string;
}

/** How long a `removing` mark holds back new endpoints; an older one is a crashed removal's. */
export const REMOVAL_MARK_MS = 30_000;

/** True while a removal of `net` is under way (a fresh `removing` mark). */
export function removalUnderWay(net: NetworkRecord, now: Date): boolean {
  if (net.removing === undefined) return false;
  const age = now.getTime() - Date.parse(net.removing);
  return age >= -REMOVAL_MARK_MS && age < REMOVAL_MARK_MS;
}

/** One published port after host-port allocation. */
export interface PortBindingRecord {
  proto: Protocol;
  /** 0.0.0.0 / :: (every address) or a specific host address. */
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface ExposedPortRecord {
  proto: Protocol;
  port: number;
}

/** How an endpoint was joined to its sandbox. */
export interface SandboxRecord {
  /** 'engine': the driver made the interface in the host namespace and the engine moved it;
   *  'netns': the driver made it directly in `netnsPath`; 'host': the host's own stack. */
  mode: 'engine' | 'netns' | 'host';
  netnsPath?: string;
  joinedAt: string;
}

/** One endpoint (`keys.endpoint(networkId, id)`). */
export interface EndpointRecord {
  id: string;
  networkId: string;
  /** The host whose kernel holds the endpoint. */
  hostId: string;
  driver: DriverName;
  containerId?: string;
  /** DNS names (container name, hostname). */
  names: string[];
  /** Network-scoped aliases. */
  aliases: string[];
  /** Addresses with prefix ("10.1.0.2/24"); for host endpoints, the host's addresses. */
  addresses: string[];
  mac?: string;
  /** Interface name inside the container (bridge/overlay, once joined). */
  ifname?: string;
  /** Host end of the veth pair (bridge/overlay). */
  hostVeth?: string;
  ports: PortBindingRecord[];
  exposed: ExposedPortRecord[];
  /** Present while joined. */
  sandbox?: SandboxRecord;
  /** ISO 8601. */
  createdAt: string;
}

type Obj = Record<string, unknown>;

function corrupt(what: string, key: string, why: string): DriverError {
  return new DriverError('corrupt-record', `${what} record at ${key} is unusable: ${why}`);
}

function check(cond: boolean, what: string, key: string, why: string): void {
  if (!cond) throw corrupt(what, key, why);
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrArr = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const optStr = (v: unknown) => v === undefined || isStr(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

function parseObject(text: string, what: string, key: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw corrupt(what, key, 'not JSON');
  }
  check(typeof v === 'object' && v !== null && !Array.isArray(v), what, key, 'not a JSON object');
  return v as Obj;
}

/** Parse and shape-check a network record read from `key`. */
export function decodeNetworkRecord(text: string, key: string): NetworkRecord {
  const o = parseObject(text, 'network', key);
  const need = (cond: boolean, field: string) => check(cond, 'network', key, `field ${field} is missing or has the wrong type`);
  need(isStr(o.id) && o.id !== '', 'id');
  need(o.driver === 'bridge' || o.driver === 'overlay' || o.driver === 'host', 'driver');
  need(o.scope === 'local' || o.scope === 'global', 'scope');
  need(isStrArr(o.subnets), 'subnets');
  need(isStrArr(o.gateways), 'gateways');
  for (const f of ['internal', 'icc', 'masquerade', 'ipv6'] as const) need(isBool(o[f]), f);
  need(optStr(o.name) && optStr(o.hostId) && optStr(o.bridge) && optStr(o.hostBindingIpv4) && optStr(o.removing), 'name/hostId/bridge/hostBindingIpv4/removing');
  need(o.mtu === undefined || Number.isInteger(o.mtu), 'mtu');
  need(o.vni === undefined || Number.isInteger(o.vni), 'vni');
  need(o.hairpin === undefined || isBool(o.hairpin), 'hairpin');
  const adopted = o.adopted as { mtu?: unknown; up?: unknown } | undefined;
  need(adopted === undefined || (typeof adopted === 'object' && adopted !== null && Number.isInteger(adopted.mtu) && isBool(adopted.up)), 'adopted');
  need(typeof o.options === 'object' && o.options !== null && !Array.isArray(o.options), 'options');
  need(isStr(o.createdAt), 'createdAt');
  return o as unknown as NetworkRecord;
}

const isPortArr = (v: unknown, fields: string[]) =>
  Array.isArray(v) && v.every((p) => typeof p === 'object' && p !== null && fields.every((f) => f in (p as Obj)));

/** Parse and shape-check an endpoint record read from `key`. */
export function decodeEndpointRecord(text: string, key: string): EndpointRecord {
  const o = parseObject(text, 'endpoint', key);
  const need = (cond: boolean, field: string) => check(cond, 'endpoint', key, `field ${field} is missing or has the wrong type`);
  need(isStr(o.id) && o.id !== '', 'id');
  need(isStr(o.networkId) && o.networkId !== '', 'networkId');
  need(isStr(o.hostId), 'hostId');
  need(o.driver === 'bridge' || o.driver === 'overlay' || o.driver === 'host', 'driver');
  need(isStrArr(o.names) && isStrArr(o.aliases) && isStrArr(o.addresses), 'names/aliases/addresses');
  need(optStr(o.containerId) && optStr(o.mac) && optStr(o.ifname) && optStr(o.hostVeth), 'containerId/mac/ifname/hostVeth');
  need(isPortArr(o.ports, ['proto', 'hostIp', 'hostPort', 'containerIp', 'containerPort']), 'ports');
  need(isPortArr(o.exposed, ['proto', 'port']), 'exposed');
  need(o.sandbox === undefined || (typeof o.sandbox === 'object' && o.sandbox !== null && 'mode' in o.sandbox), 'sandbox');
  need(isStr(o.createdAt), 'createdAt');
  return o as unknown as EndpointRecord;
}

/** JSON text of a record (stable key order as declared by the caller's object literal). */
export function encodeRecord(r: NetworkRecord | EndpointRecord): string {
  return JSON.stringify(r);
}
