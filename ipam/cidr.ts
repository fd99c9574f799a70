// Pure IPv4/IPv6 address and prefix math on BigInt values: parsing into canonical forms,
// containment and overlap, usable bounds (RFC 3021 /31, RFC 6164 /127), subnet stepping.
// No I/O. Zone ids (fe80::1%eth0) and non-decimal IPv4 forms (010.0.0.1, 0x0a.0.0.1) are refused.
import ipaddr from 'ipaddr.js';
import { IpamError } from './errors.js';

export type Family = 4 | 6;

/** An address as a family and an unsigned integer value. */
export interface Addr {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix with its host bits cleared: base is the network address. */
export interface Cidr {
  readonly family: Family;
  readonly base: bigint;
  readonly prefix: number;
}

/** An inclusive interval of address values of one family. */
export interface Interval {
  readonly start: bigint;
  readonly end: bigint;
}

/** Address width in bits. */
export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

const V4_DECIMAL = /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/;

/** Parse an address; `what` names the field in the error ("gateway", "rangeStart", …). */
export function parseAddress(text: unknown, what = 'address'): Addr {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) {
    throw new IpamError('invalid-address', `invalid ${what} ${JSON.stringify(text)}: not an IP address`);
  }
  if (V4_DECIMAL.test(text) && ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 4, value: bytesToBig(ipaddr.IPv4.parse(text).toByteArray()) };
  }
  if (text.includes(':') && !text.includes('%') && ipaddr.IPv6.isValid(text)) {
    return { family: 6, value: bytesToBig(ipaddr.IPv6.parse(text).toByteArray()) };
  }
  throw new IpamError('invalid-address', `invalid ${what} "${text}": not an IPv4 (dotted decimal) or IPv6 address`);
}

/** The canonical text of an address (dotted decimal, or RFC 5952 for IPv6). */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 4) return ipaddr.fromByteArray(bigToBytes(value, 4)).toString();
  return (ipaddr.fromByteArray(bigToBytes(value, 16)) as ipaddr.IPv6).toRFC5952String();
}

/** Canonical text of a parsed address. */
export function formatAddr(a: Addr): string {
  return formatAddress(a.family, a.value);
}

/**
 * Parse "addr/prefix". By default host bits must be zero ("10.1.2.3/24" is refused and the
 * message names the canonical form); allowHostBits keeps the address (see parseInterface).
 */
export function parseCidr(text: unknown, what = 'subnet', opts: { allowHostBits?: boolean } = {}): Cidr {
  const bad = (why: string) => new IpamError('invalid-cidr', `invalid ${what} ${JSON.stringify(text)}: ${why}`);
  if (typeof text !== 'string') throw bad('not a string');
  const slash = text.indexOf('/');
  if (slash < 0) throw bad('missing "/prefix-length"');
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  let addr: Addr;
  try {
    addr = parseAddress(addrText, what);
  } catch {
    throw bad(`"${addrText}" is not an IP address`);
  }
  const bits = bitsOf(addr.family);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    throw bad(`prefix length "${prefixText}" is not between 0 and ${bits}`);
  }
  const prefix = Number(prefixText);
  const base = addr.value & maskOf(addr.family, prefix);
  if (base !== addr.value && !opts.allowHostBits) {
    throw bad(`host bits are set (did you mean ${formatAddress(addr.family, base)}/${prefix}?)`);
  }
  return { family: addr.family, base, prefix };
}

/** Parse "addr/prefix" keeping the address: returns the address and its (cleared) network. */
export function parseInterface(text: unknown, what = 'address'): { addr: Addr; cidr: Cidr } {
  const cidr = parseCidr(text, what, { allowHostBits: true });
  const addr = parseAddress(String(text).slice(0, String(text).indexOf('/')), what);
  return { addr, cidr };
}

/** Canonical "network/prefix" text. */
export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}/${c.prefix}`;
}

/** The network mask for a prefix length. */
export function maskOf(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** Number of addresses in the prefix. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefix);
}

/** The last address (IPv4 broadcast) of the prefix. */
export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

/** The whole prefix as an interval. */
export function cidrInterval(c: Cidr): Interval {
  return { start: c.base, end: cidrLast(c) };
}

/** The prefix of the given length that holds value. */
export function cidrOf(family: Family, value: bigint, prefix: number): Cidr {
  return { family, base: value & maskOf(family, prefix), prefix };
}

/** True when the address lies inside the prefix (same family). */
export function cidrContains(c: Cidr, a: Addr): boolean {
  return a.family === c.family && a.value >= c.base && a.value <= cidrLast(c);
}

/** True when inner lies wholly inside outer. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && (inner.base & maskOf(outer.family, outer.prefix)) === outer.base;
}

/** True when the two prefixes share at least one address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && (cidrContainsCidr(a, b) || cidrContainsCidr(b, a));
}

/**
 * The addresses of a prefix that may be handed out. IPv4: without network and broadcast,
 * except /31 (both, RFC 3021) and /32 (the one). IPv6: without the subnet-router anycast
 * (network) address, except /127 (both, RFC 6164) and /128 (the one); there is no broadcast.
 */
export function usableBounds(c: Cidr): Interval {
  const bits = bitsOf(c.family);
  const last = cidrLast(c);
  if (c.prefix >= bits - 1) return { start: c.base, end: last };
  if (c.family === 4) return { start: c.base + 1n, end: last - 1n };
  return { start: c.base + 1n, end: last };
}

/** Number of usable addresses (see usableBounds). */
export function usableCount(c: Cidr): bigint {
  const u = usableBounds(c);
  return u.end - u.start + 1n;
}

/** The intersection of two intervals, or undefined when they are disjoint. */
export function intersect(a: Interval, b: Interval): Interval | undefined {
  const start = a.start > b.start ? a.start : b.start;
  const end = a.end < b.end ? a.end : b.end;
  return start <= end ? { start, end } : undefined;
}

/** The smallest aligned prefix of `prefix` length whose base is >= value (undefined past the end). */
export function alignUp(family: Family, value: bigint, prefix: number): bigint | undefined {
  const size = 1n << BigInt(bitsOf(family) - prefix);
  const aligned = ((value + size - 1n) / size) * size;
  return aligned <= (1n << BigInt(bitsOf(family))) - 1n ? aligned : undefined;
}

/** Every subnet of length `prefix` inside c, in address order (lazily; may be huge for IPv6). */
export function* subnets(c: Cidr, prefix: number): Generator<Cidr> {
  if (prefix < c.prefix || prefix > bitsOf(c.family)) return;
  const step = 1n << BigInt(bitsOf(c.family) - prefix);
  const last = cidrLast(c);
  for (let base = c.base; base <= last; base += step) yield { family: c.family, base, prefix };
}

function bytesToBig(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigToBytes(value: bigint, len: number): number[] {
  const out = new Array<number>(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
