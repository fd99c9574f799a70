// Choosing a pool automatically: the first subnet of the configured default ranges that
// overlaps no pool of the same address space and no host route. Pure; the caller supplies both.
import { type Cidr, type Family, type Interval, alignUp, cidrLast, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';
import type { AddressSpace } from './pool.js';

/** A default range carved into subnets of `size` (Docker's default-address-pools shape). */
export interface DefaultPool {
  base: string;
  size: number;
}

export type DefaultPools = Record<AddressSpace, DefaultPool[]>;

/**
 * Docker's defaults: 172.17–172.31 as /16s and 192.168.0.0/16 as /20s for local networks,
 * 10.0.0.0/8 as /24s for global ones; plus ULA /64s for IPv6 (Docker has no IPv6 default).
 */
export function dockerDefaultPools(): DefaultPools {
  const local: DefaultPool[] = [];
  for (let b = 17; b <= 31; b++) local.push({ base: `172.${b}.0.0/16`, size: 16 });
  local.push({ base: '192.168.0.0/16', size: 20 }, { base: 'fd17::/48', size: 64 });
  return { local, global: [{ base: '10.0.0.0/8', size: 24 }, { base: 'fd10::/48', size: 64 }] };
}

/** Validate configured defaults (at construction, so a bad config fails early and by name). */
export function checkDefaultPools(pools: DefaultPools): void {
  for (const space of ['local', 'global'] as const) {
    for (const p of pools[space] ?? []) {
      const base = parseCidr(p?.base, `default pool base (${space})`);
      const max = base.family === 4 ? 32 : 128;
      if (!Number.isInteger(p.size) || p.size < base.prefix || p.size > max) {
        throw new IpamError('invalid-cidr', `default pool ${p.base}: size ${p.size} must be between ${base.prefix} and ${max}`);
      }
    }
  }
}

/**
 * The first subnet of `defaults` (in order) of the family that overlaps none of `taken`.
 * Jumps over each taken prefix, so the cost grows with the number of taken prefixes, not
 * with the size of the range.
 */
export function findAutoPool(defaults: DefaultPool[], family: Family, taken: Cidr[]): Cidr | undefined {
  const blocked = mergeIntervals(taken.filter((t) => t.family === family && t.prefix > 0));
  for (const d of defaults) {
    const base = parseCidr(d.base);
    if (base.family !== family) continue;
    const end = cidrLast(base);
    let at: bigint | undefined = base.base;
    let i = 0;
    while (at !== undefined && at <= end) {
      const candEnd: bigint = at + (1n << BigInt((family === 4 ? 32 : 128) - d.size)) - 1n;
      while (i < blocked.length && blocked[i]!.end < at) i++;
      const hit = blocked[i];
      if (!hit || hit.start > candEnd) return { family, base: at, prefix: d.size };
      at = alignUp(family, (hit.end > candEnd ? hit.end : candEnd) + 1n, d.size);
    }
  }
  return undefined;
}

/** Sorted, disjoint union of the prefixes' address intervals. */
function mergeIntervals(cidrs: Cidr[]): Interval[] {
  const ivs = cidrs.map((c) => ({ start: c.base, end: cidrLast(c) })).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of ivs) {
    const last = out[out.length - 1];
    if (last && iv.start <= last.end + 1n) {
      if (iv.end > last.end) out[out.length - 1] = { start: last.start, end: iv.end };
    } else out.push(iv);
  }
  return out;
}

/** The error when no default subnet is left. */
export function noAutoPool(space: AddressSpace, family: Family, defaults: DefaultPool[]): IpamError {
  const ranges = defaults.filter((d) => parseCidr(d.base).family === family).map((d) => `${d.base} in /${d.size}s`);
  return new IpamError(
    'no-auto-pool',
    `no free IPv${family} subnet left in the ${space} default pools (${ranges.join(', ') || 'none configured'}); give an explicit subnet`,
  );
}

/** Parse host routes, skipping default routes and anything unparsable (they cannot block a pool). */
export function parseRoutes(routes: string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const r of routes) {
    try {
      const c = parseCidr(r.includes('/') ? r : `${r}/${r.includes(':') ? 128 : 32}`, 'route', { allowHostBits: true });
      if (c.prefix > 0) out.push(c);
    } catch {
      // A route the kernel printed in a form we do not parse cannot be compared; ignore it.
    }
  }
  return out;
}
