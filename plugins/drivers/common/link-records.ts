// Links (Docker's legacy `--link`, book ch. 7 and 20.3) as store records: what `tsoverlay link
// add` writes at keys.link(network, from, to) and what the daemon's LinkController applies.
// Endpoints are named by reference (a name or alias, else the id) so a container that comes
// back with a new endpoint under the same name keeps its links. Pure: no I/O.
import type { EndpointRecord, Protocol } from './records.js';

/** Error of the link/service commands and records: stable code, class, retryable. */
export class RecordError extends Error {
  readonly retryable = false;
  constructor(
    readonly code: string,
    readonly kind: 'bad-request' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}

/** One opened port of a link (the target's side). */
export interface LinkPort {
  proto: Protocol;
  port: number;
}

/** The value stored at keys.link(networkId, from, to): `from` may open connections to `to`'s ports. */
export interface LinkRecord {
  networkId: string;
  /** Endpoint reference on the network: one of its names or aliases, else its id. */
  from: string;
  to: string;
  /** The name `from` knows `to` by (Docker's `--link name:alias`). */
  alias: string;
  /** The ports opened; empty = the target's exposed ports, read each time the link is applied. */
  ports: LinkPort[];
  /** ISO 8601. */
  createdAt: string;
}

/** Endpoint references and aliases: what the firewall accepts as names (proxy/validate objectName). */
const REF = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const PROTOS: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp']);

/** Check an endpoint reference or alias given by a user; returns it. */
export function checkRef(value: string, field: string): string {
  if (!REF.test(value)) throw new RecordError('invalid-name', 'bad-request', `${field}: ${JSON.stringify(value)} is not a valid name (letters, digits, "_.:@-", at most 128)`);
  return value;
}

/** Parse `PORT[/PROTO]` (proto default tcp). */
export function parseLinkPort(text: string): LinkPort {
  const m = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  const proto = m?.[2] ?? 'tcp';
  if (!m || port < 1 || port > 65535 || !PROTOS.has(proto)) {
    throw new RecordError('invalid-port', 'bad-request', `port ${JSON.stringify(text)}: expected PORT[/tcp|udp|sctp] with PORT 1-65535`);
  }
  return { proto: proto as Protocol, port };
}

/** Decode a stored link record; undefined when the value is unusable. */
export function decodeLinkRecord(value: string): LinkRecord | undefined {
  let o: Partial<LinkRecord>;
  try {
    o = JSON.parse(value) as Partial<LinkRecord>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  if (!str(o.networkId) || !str(o.from) || !str(o.to)) return undefined;
  const ports = Array.isArray(o.ports)
    ? o.ports.filter((p): p is LinkPort => typeof p === 'object' && p !== null && PROTOS.has(p.proto) && Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535)
    : [];
  return { networkId: o.networkId, from: o.from, to: o.to, alias: str(o.alias) ? o.alias : o.to, ports, createdAt: str(o.createdAt) ? o.createdAt : '' };
}

/**
 * The endpoint a reference names among one network's endpoints: its id, one of its names or
 * aliases, its container id, or a prefix of 12+ characters of the id or container id. More
 * than one match is `ambiguous-endpoint`; none is undefined.
 */
export function findEndpoint(endpoints: readonly EndpointRecord[], ref: string): EndpointRecord | undefined {
  const exact = endpoints.find((e) => e.id === ref);
  if (exact) return exact;
  const tiers: ((e: EndpointRecord) => boolean)[] = [
    (e) => e.names.includes(ref) || e.aliases.includes(ref),
    (e) => e.containerId === ref,
    (e) => ref.length >= 12 && (e.id.startsWith(ref) || (e.containerId?.startsWith(ref) ?? false)),
  ];
  for (const match of tiers) {
    const found = endpoints.filter(match);
    if (found.length > 1) throw new RecordError('ambiguous-endpoint', 'bad-request', `"${ref}" names ${found.length} endpoints (${found.map((e) => e.id).join(', ')}): use an id`);
    if (found.length === 1) return found[0];
  }
  return undefined;
}

/** The reference stored for an endpoint: its first name when it has one (stable across restarts), else its id. */
export function refOf(ep: EndpointRecord): string {
  const name = ep.names[0];
  return name !== undefined && REF.test(name) ? name : ep.id;
}

/** An endpoint's first address of a family, without prefix length. */
export function addressOf(ep: EndpointRecord, family: 4 | 6): string | undefined {
  const a = ep.addresses.map((x) => x.split('/')[0]!).find((x) => (family === 6) === x.includes(':'));
  return a;
}

/** The addresses a link joins: IPv4 when both ends have one, else IPv6; undefined when none match. */
export function linkAddresses(from: EndpointRecord, to: EndpointRecord): { fromIp: string; toIp: string } | undefined {
  for (const fam of [4, 6] as const) {
    const fromIp = addressOf(from, fam);
    const toIp = addressOf(to, fam);
    if (fromIp && toIp) return { fromIp, toIp };
  }
  return undefined;
}

/** The ports a link opens: its own, else the target's exposed ports. */
export function linkPorts(rec: LinkRecord, to: EndpointRecord): LinkPort[] {
  return rec.ports.length > 0 ? rec.ports : to.exposed.map((p) => ({ proto: p.proto, port: p.port }));
}

/**
 * The environment Docker gives a linked container (book ch. 7): `<ALIAS>_NAME=/<from>/<alias>`,
 * `<ALIAS>_PORT` (the lowest port), and `<ALIAS>_PORT_<port>_<PROTO>{,_ADDR,_PORT,_PROTO}` per port.
 */
export function linkEnv(from: string, alias: string, toIp: string, ports: readonly LinkPort[]): string[] {
  const p = alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const host = toIp.includes(':') ? `[${toIp}]` : toIp;
  const sorted = [...ports].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  const env = [`${p}_NAME=/${from}/${alias}`];
  if (sorted[0]) env.push(`${p}_PORT=${sorted[0].proto}://${host}:${sorted[0].port}`);
  for (const x of sorted) {
    const base = `${p}_PORT_${x.port}_${x.proto.toUpperCase()}`;
    env.push(`${base}=${x.proto}://${host}:${x.port}`, `${base}_ADDR=${toIp}`, `${base}_PORT=${x.port}`, `${base}_PROTO=${x.proto}`);
  }
  return env;
}
