// Pool definitions without I/O: validating a pool request into the stored record, pool ids,
// the compiled (BigInt) view used for allocation, and block geometry inside a pool.
import {
  type Addr,
  type Cidr,
  type Family,
  type Interval,
  bitsOf,
  cidrContains,
  cidrInterval,
  cidrLast,
  formatAddress,
  formatCidr,
  intersect,
  parseAddress,
  parseCidr,
  usableBounds,
  usableCount,
} from './cidr.js';
import { IpamError } from './errors.js';

/** Docker's two default address spaces (GetDefaultAddressSpaces). */
export type AddressSpace = 'local' | 'global';
export const ADDRESS_SPACES: readonly AddressSpace[] = ['local', 'global'];

/** What a pool is asked for; exactly the validated subset is stored. */
export interface PoolSpec {
  space: AddressSpace;
  cidr: string;
  /** Sub-pool: a CIDR inside cidr (Docker --ip-range), or an inclusive start–end (CNI rangeStart/rangeEnd). */
  range?: string | { start: string; end: string };
  /** Explicit gateway; default the first usable address (none for /32 and /128). */
  gateway?: string;
  /** Addresses never handed out by "next free" (they may still be requested as aux/gateway). */
  reserved?: string[];
}

/** The stored pool record (JSON under keys.ipamPool(id)). */
export interface PoolRecord {
  id: string;
  space: AddressSpace;
  cidr: string;
  family: Family;
  range: { start: string; end: string } | null;
  gateway: string | null;
  gatewayExplicit: boolean;
  reserved: string[];
  /** Prefix length of the host-affine blocks, fixed at creation so every host agrees. */
  blockPrefix: number;
  auto: boolean;
  /** Holders of the pool (ref-counted sharing); the pool is deleted with its last ref. */
  refs: string[];
  created: string;
  createdBy: string;
}

/** A pool record compiled into BigInt form for allocation. */
export interface PoolView {
  readonly rec: PoolRecord;
  readonly cidr: Cidr;
  /** Addresses "next free" may hand out: usable ∩ range (gateway and reserved still excluded). */
  readonly alloc: Interval;
  readonly gateway: bigint | undefined;
  readonly reserved: ReadonlySet<bigint>;
  /** Effective block prefix: the pool itself when it is smaller than a block. */
  readonly blockPrefix: number;
}

/** Check a space name. */
export function parseSpace(space: unknown): AddressSpace {
  if (space === 'local' || space === 'global') return space;
  throw new IpamError('unknown-address-space', `unknown address space ${JSON.stringify(space)} (known: local, global)`);
}

/** The deterministic, readable pool id: "local/172.18.0.0/16" or ".../172.18.5.0-172.18.5.255". */
export function poolIdOf(space: AddressSpace, cidr: string, range: { start: string; end: string } | null): string {
  return range ? `${space}/${cidr}/${range.start}-${range.end}` : `${space}/${cidr}`;
}

/** Validate a request into a record (refs and times filled by the caller). Throws IpamError. */
export function buildPool(spec: PoolSpec, blockPrefix: { v4: number; v6: number }): Omit<PoolRecord, 'refs' | 'created' | 'createdBy' | 'auto'> {
  const space = parseSpace(spec.space);
  const cidr = parseCidr(spec.cidr, 'subnet');
  const cidrText = formatCidr(cidr);
  const range = spec.range === undefined ? undefined : parseRange(cidr, spec.range);
  const gateway = spec.gateway === undefined ? defaultGateway(cidr) : checkGateway(cidr, spec.gateway);
  const reserved = [...new Set((spec.reserved ?? []).map((r) => checkInside(cidr, r, 'reserved address')))];
  const rangeText = range ? { start: formatAddress(cidr.family, range.start), end: formatAddress(cidr.family, range.end) } : null;
  const bp = cidr.family === 4 ? blockPrefix.v4 : blockPrefix.v6;
  return {
    id: poolIdOf(space, cidrText, rangeText),
    space,
    cidr: cidrText,
    family: cidr.family,
    range: rangeText,
    gateway: gateway === undefined ? null : formatAddress(cidr.family, gateway),
    gatewayExplicit: spec.gateway !== undefined,
    reserved: reserved.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((v) => formatAddress(cidr.family, v)),
    blockPrefix: Math.max(bp, cidr.prefix),
  };
}

/** The first usable address, or none when the prefix has a single usable address. */
export function defaultGateway(cidr: Cidr): bigint | undefined {
  return usableCount(cidr) < 2n ? undefined : usableBounds(cidr).start;
}

function checkGateway(cidr: Cidr, text: string): bigint {
  const a = parseAddress(text, 'gateway');
  if (!cidrContains(cidr, a)) {
    throw new IpamError('gateway-outside-subnet', `gateway ${text} is outside subnet ${formatCidr(cidr)}`);
  }
  const u = usableBounds(cidr);
  if (a.value < u.start || a.value > u.end) {
    throw new IpamError('invalid-gateway', `gateway ${text} is the network or broadcast address of subnet ${formatCidr(cidr)}`);
  }
  return a.value;
}

function checkInside(cidr: Cidr, text: string, what: string): bigint {
  const a = parseAddress(text, what);
  if (!cidrContains(cidr, a)) throw new IpamError('address-outside-pool', `${what} ${text} is outside subnet ${formatCidr(cidr)}`);
  return a.value;
}

/** Parse a sub-pool CIDR or a start–end pair; it must lie inside the subnet and hold a usable address. */
export function parseRange(cidr: Cidr, range: string | { start: string; end: string }): Interval {
  let iv: Interval;
  let shown: string;
  if (typeof range === 'string') {
    const sub = parseCidr(range, 'ip range');
    shown = range;
    if (sub.family !== cidr.family || sub.prefix < cidr.prefix || !cidrContains(cidr, { family: sub.family, value: sub.base })) {
      throw new IpamError('range-outside-subnet', `ip range ${range} is outside subnet ${formatCidr(cidr)}`);
    }
    iv = cidrInterval(sub);
  } else if (range && typeof range === 'object') {
    const s = parseAddress(range.start, 'rangeStart');
    const e = parseAddress(range.end, 'rangeEnd');
    shown = `${range.start}-${range.end}`;
    for (const [a, text, what] of [[s, range.start, 'rangeStart'], [e, range.end, 'rangeEnd']] as [Addr, string, string][]) {
      if (!cidrContains(cidr, a)) throw new IpamError('range-outside-subnet', `${what} ${text} is outside subnet ${formatCidr(cidr)}`);
    }
    if (s.value > e.value) throw new IpamError('invalid-range', `rangeStart ${range.start} is after rangeEnd ${range.end}`);
    iv = { start: s.value, end: e.value };
  } else {
    throw new IpamError('invalid-range', `invalid range ${JSON.stringify(range)}: expected a CIDR or {start, end}`);
  }
  const usable = intersect(iv, usableBounds(cidr));
  if (!usable) throw new IpamError('invalid-range', `range ${shown} holds no usable address of subnet ${formatCidr(cidr)}`);
  return usable;
}

/** Compile a stored record for allocation. */
export function compilePool(rec: PoolRecord): PoolView {
  const cidr = parseCidr(rec.cidr);
  const usable = usableBounds(cidr);
  const range = rec.range ? { start: parseAddress(rec.range.start).value, end: parseAddress(rec.range.end).value } : usable;
  return {
    rec,
    cidr,
    alloc: intersect(range, usable) ?? usable,
    gateway: rec.gateway ? parseAddress(rec.gateway).value : undefined,
    reserved: new Set(rec.reserved.map((r) => parseAddress(r).value)),
    blockPrefix: Math.max(rec.blockPrefix, cidr.prefix),
  };
}

/** True when "next free" may hand out value. */
export function isHandout(p: PoolView, value: bigint): boolean {
  return value >= p.alloc.start && value <= p.alloc.end && value !== p.gateway && !p.reserved.has(value);
}

/** Number of addresses "next free" could ever hand out (for exhaustion messages). */
export function handoutCount(p: PoolView): bigint {
  let n = p.alloc.end - p.alloc.start + 1n;
  if (p.gateway !== undefined && p.gateway >= p.alloc.start && p.gateway <= p.alloc.end) n--;
  for (const r of p.reserved) if (r >= p.alloc.start && r <= p.alloc.end && r !== p.gateway) n--;
  return n;
}

/** Index of the block holding value, counted from the pool's network address. */
export function blockIndex(p: PoolView, value: bigint): bigint {
  return (value - p.cidr.base) >> BigInt(bitsOf(p.cidr.family) - p.blockPrefix);
}

/** The block with the given index. */
export function blockAt(p: PoolView, index: bigint): Cidr {
  const size = 1n << BigInt(bitsOf(p.cidr.family) - p.blockPrefix);
  return { family: p.cidr.family, base: p.cidr.base + index * size, prefix: p.blockPrefix };
}

/** The canonical text of the block holding value (a key segment). */
export function blockName(p: PoolView, value: bigint): string {
  return formatCidr(blockAt(p, blockIndex(p, value)));
}

/** First and last block indexes that hold an allocatable address. */
export function blockSpan(p: PoolView): { first: bigint; last: bigint } {
  return { first: blockIndex(p, p.alloc.start), last: blockIndex(p, p.alloc.end) };
}

/** The allocatable part of a block (undefined when none). */
export function blockAlloc(p: PoolView, block: Cidr): Interval | undefined {
  return intersect({ start: block.base, end: cidrLast(block) }, p.alloc);
}
