// tsipam's config: the `ipam` section in the reference host-local's shape (`ranges` as a
// list of range sets, the legacy `subnet`/`rangeStart`/`rangeEnd`/`gateway` form, `routes`,
// `resolvConf`, `dataDir` ignored) plus `store` and `daemonSocket`. Pure except resolv.conf.
import { readFile } from 'node:fs/promises';
import type { IpRange } from './args.js';
import { DEFAULT_DAEMON_SOCKET, DEFAULT_STORE_URL } from './context.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import { cidr as cidrMath } from '../../ipam/index.js';
import type { Dns, NetConf, Route } from './types.js';

/** One validated range (canonical texts). */
export interface TsipamRange {
  /** Canonical subnet ("10.1.0.0/24"). */
  subnet: string;
  family: 4 | 6;
  /** Inclusive bounds; both set when either was configured. */
  range?: { start: string; end: string };
  gateway?: string;
  /** The config path of this range, for messages ("ipam.ranges[0][1]"). */
  field: string;
}

/** The validated `ipam` section. */
export interface TsipamConf {
  /** Range sets: one address is allocated per set, from its first range with room. */
  rangeSets: TsipamRange[][];
  routes: Route[];
  resolvConf?: string;
  store: string;
  daemonSocket: string;
  /** Keys accepted but ignored (host-local's `dataDir`), for a warning. */
  ignored: string[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(o: Obj, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalidConfig(`${field}.${key}`, v, 'not a string');
  return v;
}

/** Wrap an ipam/cidr parse so its failure becomes CniError 7 naming the config field. */
function parsed<T>(field: string, value: unknown, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const why = (err as Error).message.replace(/^invalid [^"]*"[^"]*": /, '');
    throw invalidConfig(field, value, why);
  }
}

/** Validate one range: subnet without host bits, bounds and gateway inside it, start ≤ end. */
export function parseRange(raw: unknown, field: string): TsipamRange {
  if (!isObj(raw)) throw invalidConfig(field, raw, 'not an object');
  const subnetText = raw.subnet;
  if (subnetText === undefined || subnetText === '') throw invalidConfig(`${field}.subnet`, subnetText ?? '', 'missing');
  const c = parsed(`${field}.subnet`, subnetText, () => cidrMath.parseCidr(subnetText, 'subnet'));
  const subnet = cidrMath.formatCidr(c);
  const usable = cidrMath.usableBounds(c);
  const inside = (key: string): bigint | undefined => {
    const text = optString(raw, key, field);
    if (text === undefined) return undefined;
    const a = parsed(`${field}.${key}`, text, () => cidrMath.parseAddress(text, key));
    if (!cidrMath.cidrContains(c, a)) {
      throw invalidConfig(`${field}.${key}`, text, `outside subnet ${subnet}${key === 'gateway' ? ' (gateway outside subnet)' : ''}`);
    }
    return a.value;
  };
  const start = inside('rangeStart');
  const end = inside('rangeEnd');
  const gw = inside('gateway');
  const out: TsipamRange = { subnet, family: c.family, field };
  if (start !== undefined || end !== undefined) {
    const s = start ?? usable.start;
    const e = end ?? usable.end;
    if (s > e) throw invalidConfig(`${field}.rangeStart`, raw.rangeStart, `is after rangeEnd ${cidrMath.formatAddress(c.family, e)}`);
    out.range = { start: cidrMath.formatAddress(c.family, s), end: cidrMath.formatAddress(c.family, e) };
  }
  if (gw !== undefined) out.gateway = cidrMath.formatAddress(c.family, gw);
  return out;
}

function parseRangeSets(ipam: Obj, override: IpRange[][]): TsipamRange[][] {
  const sets: Array<{ raw: unknown[]; field: string }> = [];
  if (override.length > 0) {
    // The `ipRanges` capability replaces the configured ranges (as host-local does).
    override.forEach((s, i) => sets.push({ raw: s, field: `runtimeConfig.ipRanges[${i}]` }));
  } else {
    // host-local: the legacy single range, when given, becomes the first range set.
    if (ipam.subnet !== undefined && ipam.subnet !== '') {
      sets.push({ raw: [{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }], field: 'ipam' });
    }
    const ranges = ipam.ranges ?? [];
    if (!Array.isArray(ranges)) throw invalidConfig('ipam.ranges', ranges, 'not a list of range sets');
    ranges.forEach((s, i) => {
      if (!Array.isArray(s)) throw invalidConfig(`ipam.ranges[${i}]`, s, 'not a list of ranges');
      sets.push({ raw: s, field: `ipam.ranges[${i}]` });
    });
  }
  if (sets.length === 0) throw invalidConfig('ipam.ranges', ipam.ranges ?? [], 'no IP ranges specified (give ipam.ranges or ipam.subnet)');
  const out = sets.map(({ raw, field }) => {
    if (raw.length === 0) throw invalidConfig(field, raw, 'an empty range set');
    // The legacy form names its fields directly under ipam (ipam.subnet, ipam.gateway, …).
    const rs = raw.map((r, j) => parseRange(r, field === 'ipam' ? 'ipam' : `${field}[${j}]`));
    for (const r of rs) {
      if (r.family !== rs[0]!.family) throw invalidConfig(`${r.field}.subnet`, r.subnet, `mixes address families within range set ${field}`);
    }
    return rs;
  });
  checkOverlaps(out.flat());
  return out;
}

function bounds(r: TsipamRange): { family: 4 | 6; start: bigint; end: bigint } {
  const c = cidrMath.parseCidr(r.subnet);
  const s = r.range ? cidrMath.parseAddress(r.range.start).value : cidrMath.cidrInterval(c).start;
  const e = r.range ? cidrMath.parseAddress(r.range.end).value : cidrMath.cidrInterval(c).end;
  return { family: c.family, start: s, end: e };
}

function checkOverlaps(all: TsipamRange[]): void {
  const b = all.map(bounds);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (b[i]!.family === b[j]!.family && b[i]!.start <= b[j]!.end && b[j]!.start <= b[i]!.end) {
        throw invalidConfig(`${all[j]!.field}.subnet`, all[j]!.subnet, `overlaps range ${all[i]!.field} (${all[i]!.subnet})`);
      }
    }
  }
}

/** Validate `routes` ([{dst, gw?}]). */
export function parseRoutes(v: unknown, field: string): Route[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig(field, v, 'not a list');
  return v.map((r, i) => {
    const f = `${field}[${i}]`;
    if (!isObj(r)) throw invalidConfig(f, r, 'not an object');
    parsed(`${f}.dst`, r.dst, () => cidrMath.parseCidr(r.dst, 'dst', { allowHostBits: true }));
    const out: Route = { dst: r.dst as string };
    const gw = optString(r, 'gw', f);
    if (gw !== undefined) {
      parsed(`${f}.gw`, gw, () => cidrMath.parseAddress(gw, 'gw'));
      out.gw = gw;
    }
    return out;
  });
}

/**
 * The validated `ipam` section of `conf`. `store` and `daemonSocket` fall back to the
 * plugin's own keys, then the defaults. `ipRanges` (the capability) replaces the ranges.
 * Throws CniError 7 naming the field and value.
 */
export function parseTsipamConf(conf: NetConf, ipRanges: IpRange[][] = []): TsipamConf {
  const ipam = conf.ipam as unknown;
  if (!isObj(ipam)) throw invalidConfig('ipam', ipam ?? null, 'missing or not an object');
  const out: TsipamConf = {
    rangeSets: parseRangeSets(ipam, ipRanges),
    routes: parseRoutes(ipam.routes, 'ipam.routes'),
    store: storeUrlOf(conf),
    daemonSocket: optString(ipam, 'daemonSocket', 'ipam') ?? optString(conf, 'daemonSocket', 'conf') ?? DEFAULT_DAEMON_SOCKET,
    ignored: ipam.dataDir === undefined ? [] : ['dataDir'],
  };
  const rc = optString(ipam, 'resolvConf', 'ipam');
  if (rc !== undefined) out.resolvConf = rc;
  return out;
}

/** The store URL for tsipam: `ipam.store`, else the plugin's `store`, else the default. */
export function storeUrlOf(conf: NetConf): string {
  const ipam = isObj(conf.ipam) ? (conf.ipam as Obj) : {};
  return optString(ipam, 'store', 'ipam') ?? optString(conf, 'store', 'conf') ?? DEFAULT_STORE_URL;
}

/** Parse resolv.conf text into a result's `dns` (nameserver, domain, search, options). */
export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*$/, '').trim().split(/\s+/).filter(Boolean);
    const [key, ...rest] = words;
    if (key === 'nameserver' && rest[0]) (dns.nameservers ??= []).push(rest[0]);
    else if (key === 'domain' && rest[0]) dns.domain = rest[0];
    else if (key === 'search' && rest.length) dns.search = rest;
    else if (key === 'options' && rest.length) (dns.options ??= []).push(...rest);
  }
  return dns;
}

/** Read `resolvConf` (CniError 7 naming the field when unreadable). */
export async function readResolvConf(path: string): Promise<Dns> {
  try {
    return parseResolvConf(await readFile(path, 'utf8'));
  } catch (err) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid ipam.resolvConf ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
