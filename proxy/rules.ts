// Firewall rules as data: typed rule objects, the chain model, and the fixed chain-name scheme.
// Nothing here spawns or renders; render.ts turns these into iptables-restore text.
import { createHash } from 'node:crypto';
import type { Family, Proto } from './validate.js';

export type { Family, Proto } from './validate.js';
export type Table = 'raw' | 'nat' | 'filter';

/** Connection-tracking states in the order iptables prints them. */
export const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
export type CtState = (typeof CT_STATES)[number];

export interface IfMatch {
  name: string;
  not?: boolean;
}

export type Target =
  | { kind: 'ACCEPT' | 'DROP' | 'RETURN' | 'MASQUERADE' }
  | { kind: 'jump'; chain: string }
  | { kind: 'DNAT'; ip: string; port: number }
  | { kind: 'SNAT'; ip: string };

/**
 * One rule. Fields render in iptables-save's order (-s -d -i -o -p, the protocol match,
 * addrtype, conntrack, recent, statistic, target), so the text we apply is the text we read back.
 */
export interface Rule {
  /** Canonical CIDR (hosts as /32 or /128). */
  src?: string;
  dst?: string;
  /** Negate the destination match (`! -d`). */
  notDst?: boolean;
  in?: IfMatch;
  out?: IfMatch;
  proto?: Proto;
  /** A port or an inclusive range (needs proto). */
  dport?: number | readonly [number, number];
  sport?: number;
  dstType?: 'LOCAL';
  ctstate?: readonly CtState[];
  /** xt_recent keyed by the source address: record it (set), or match and refresh it within `seconds` (update). */
  recent?: { name: string; set: true } | { name: string; seconds: number };
  /** xt_statistic random mode, 0 < p < 1. */
  probability?: number;
  target: Target;
}

/**
 * A chain we own. `ordered` chains are rewritten whole when they change; in unordered
 * chains every rule is independent of the others, so a change is a few -A/-D lines.
 */
export interface Chain {
  table: Table;
  name: string;
  ordered: boolean;
  rules: Rule[];
}

/** A rule we append to a built-in chain to reach ours. */
export interface Jump {
  table: Table;
  chain: 'PREROUTING' | 'OUTPUT' | 'POSTROUTING' | 'FORWARD';
  rule: Rule;
}

/** The chain-name scheme: every name is fixed or a TSO-<kind>-<hash>; all fit in 28 characters. */
export const CHAINS = {
  /** raw: drops packets for 127.0.0.0/8 that did not come from lo (CVE-2020-8558). */
  rawPre: 'TSO-PREROUTING',
  /** nat: dispatch of published ports into per-protocol port buckets. */
  dnat: 'TSO-DNAT',
  /** nat: service VIP:port -> TSO-SVC-… */
  services: 'TSO-SERVICES',
  postrouting: 'TSO-POSTROUTING',
  forward: 'TSO-FORWARD',
  isolation1: 'TSO-ISOLATION-1',
  isolation2: 'TSO-ISOLATION-2',
  links: 'TSO-LINKS',
} as const;

/** Published ports are spread over buckets of 256 ports per protocol, so a change touches one small chain. */
export const BUCKET_BITS = 8;

/** TSO-DNAT-TCP-C0 for tcp ports 49152..49407. */
export function bucketChain(proto: Proto, hostPort: number): string {
  const b = hostPort >> BUCKET_BITS;
  return `TSO-DNAT-${proto.toUpperCase()}-${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** The inclusive port range of the bucket holding hostPort. */
export function bucketRange(hostPort: number): [number, number] {
  const lo = (hostPort >> BUCKET_BITS) << BUCKET_BITS;
  return [lo, lo + (1 << BUCKET_BITS) - 1];
}

function hash16(parts: readonly (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16).toUpperCase();
}

/** TSO-SVC-<16 hex>: one chain per service port. */
export function svcChain(service: string, proto: Proto, port: number): string {
  return `TSO-SVC-${hash16(['svc', service, proto, port])}`;
}

/** TSO-AFF-<16 hex>: the xt_recent list of clients pinned to one backend of a service port (not a chain). */
export function affinityList(service: string, proto: Proto, port: number, backendIp: string, targetPort: number): string {
  return `TSO-AFF-${hash16(['aff', service, proto, port, backendIp, targetPort])}`;
}

/** The table/name key used for maps of chains. */
export function chainKey(table: Table, name: string): string {
  return `${table}/${name}`;
}
