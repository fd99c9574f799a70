// The views dns/ reads from store records (endpoints, networks, services, SkyDNS entries).
// Parsing is tolerant: unknown fields are ignored, optional ones may be missing, a bad name or
// address is skipped. dns/README.md lists the fields relied on, for the writers of the records.
import { parseAddress, type Addr } from './address.js';
import { nameKey } from './name.js';

/** An endpoint as DNS sees it. */
export interface EndpointView {
  id: string;
  networkId: string;
  hostId?: string;
  /** Groups a container's endpoints on several networks (containerId, else the sandbox's netns path). */
  containerId?: string;
  /** Name keys the endpoint answers to, the primary (PTR target) first. */
  names: string[];
  addrs: Addr[];
}

export interface NetworkView {
  id: string;
  /** The <network> label of <name>.<network>.<domain> (name, else id). */
  label: string;
  internal: boolean;
  gateways: Addr[];
  subnets: string[];
}

export interface ServicePort {
  port: number;
  targetPort: number;
  proto: 'tcp' | 'udp' | 'sctp';
  name?: string;
}

export interface ServiceBackend {
  addr: Addr;
  /** Overrides the port's targetPort in SRV answers. */
  port?: number;
}

export interface ServiceView {
  name: string;
  vip?: Addr;
  ports: ServicePort[];
  backends: ServiceBackend[];
  /** When set, only clients on these networks (ids) see the service. */
  networks?: string[];
}

/** One SkyDNS record (CoreDNS etcd plugin format). */
export interface SkydnsView {
  /** An address (A/AAAA) or a name (CNAME, SRV target). */
  host: Addr | string;
  port: number;
  priority: number;
  weight: number;
  ttl?: number;
  text?: string;
}

type Obj = Record<string, unknown>;

function obj(json: string): Obj | undefined {
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);
const int = (v: unknown, lo: number, hi: number): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? v : undefined;

function addrs(values: unknown[]): Addr[] {
  const out: Addr[] = [];
  for (const v of values) {
    const a = parseAddress(v);
    if (a && !out.some((o) => o.ip === a.ip)) out.push(a);
  }
  return out;
}

/** Endpoint record (key endpoints/<networkId>/<endpointId>); undefined when unusable. */
export function parseEndpoint(json: string, keyNetworkId: string, keyEndpointId: string): EndpointView | undefined {
  const o = obj(json);
  if (!o) return undefined;
  const cid = str(o.containerId);
  const sandbox = (typeof o.sandbox === 'object' && o.sandbox !== null ? o.sandbox : {}) as Obj;
  // Docker's remote API gives no container id, but every endpoint of a container joins the same netns.
  const containerId = cid ?? str(o.sandboxKey) ?? str(sandbox.netnsPath);
  const shortId = cid && /^[0-9a-f]{12,}$/i.test(cid) ? cid.slice(0, 12).toLowerCase() : undefined;
  const candidates = [o.name, o.hostname, ...list(o.names), ...list(o.aliases), shortId];
  const names: string[] = [];
  for (const c of candidates) {
    const k = nameKey(c);
    if (k && !names.includes(k)) names.push(k);
  }
  const addrList = [...list(o.addresses), o.address, o.addressIPv6, o.ipv4, o.ipv6];
  return {
    id: str(o.id) ?? keyEndpointId,
    networkId: str(o.networkId) ?? keyNetworkId,
    hostId: str(o.hostId),
    containerId,
    names,
    addrs: addrs(addrList.filter((a) => a !== undefined)),
  };
}

/** Network record (key networks/<id>). */
export function parseNetwork(json: string, keyId: string): NetworkView | undefined {
  const o = obj(json);
  if (!o) return undefined;
  const id = str(o.id) ?? keyId;
  const label = nameKey(o.name) ?? nameKey(id) ?? id.toLowerCase();
  const options = typeof o.options === 'object' && o.options !== null ? (o.options as Obj) : {};
  const internal = o.internal === true || options.internal === true || options['com.docker.network.internal'] === true;
  const subnets = [...list(o.subnets), o.subnet]
    .map((s) => (typeof s === 'string' ? s : str((s as Obj | null)?.subnet) ?? str((s as Obj | null)?.cidr)))
    .filter((s): s is string => s !== undefined);
  return { id, label, internal, gateways: addrs([...list(o.gateways), o.gateway]), subnets };
}

const PROTOS = new Set(['tcp', 'udp', 'sctp']);

/** Service record (key services/<name>). */
export function parseService(json: string, keyName: string): ServiceView | undefined {
  const o = obj(json);
  if (!o) return undefined;
  const name = nameKey(o.name) ?? nameKey(keyName);
  if (!name) return undefined;
  const ports: ServicePort[] = [];
  for (const p of list(o.ports)) {
    const po = (typeof p === 'object' && p !== null ? p : {}) as Obj;
    const port = int(po.port, 1, 65535);
    const proto = String(po.protocol ?? po.proto ?? 'tcp').toLowerCase();
    if (port === undefined || !PROTOS.has(proto)) continue;
    const pname = nameKey(po.name);
    ports.push({ port, targetPort: int(po.targetPort, 1, 65535) ?? port, proto: proto as ServicePort['proto'], ...(pname ? { name: pname } : {}) });
  }
  const backends: ServiceBackend[] = [];
  for (const b of list(o.backends)) {
    const bo = (typeof b === 'object' && b !== null ? b : { address: b }) as Obj;
    const addr = parseAddress(bo.address ?? bo.ip ?? bo.addr);
    if (!addr || backends.some((x) => x.addr.ip === addr.ip)) continue;
    const port = int(bo.port, 1, 65535);
    backends.push({ addr, ...(port !== undefined ? { port } : {}) });
  }
  const networks = list(o.networks).filter((n): n is string => typeof n === 'string');
  return { name, vip: parseAddress(o.vip), ports, backends, ...(networks.length ? { networks } : {}) };
}

/** SkyDNS record: {"host": "10.0.0.1" | "name.example", "port", "priority", "weight", "ttl", "text"}. */
export function parseSkydns(json: string): SkydnsView | undefined {
  const o = obj(json);
  if (!o) return undefined;
  const hostText = str(o.host);
  const host = hostText === undefined ? undefined : (parseAddress(hostText) ?? nameKey(hostText));
  const text = typeof o.text === 'string' ? o.text.slice(0, 4000) : undefined;
  if (host === undefined && text === undefined) return undefined;
  return {
    host: host ?? '',
    port: int(o.port, 0, 65535) ?? 0,
    priority: int(o.priority, 0, 65535) ?? 10,
    weight: int(o.weight, 0, 65535) ?? 0,
    ttl: int(o.ttl, 0, 2 ** 31 - 1),
    ...(text !== undefined ? { text } : {}),
  };
}
