// CNI spec versions: the supported list, negotiation (cniVersion / cniVersions), and
// conversion between the canonical 1.1.0-shaped Result and every supported wire shape.
// Conversion follows libcni: 0.x gains ips[].version and loses the 1.1.0 interface
// fields; route fields are kept on every version; unknown result keys are dropped.
import { CniError, ErrorCode } from './errors.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './fast-entry.js';
import { addressVersion, isCidr, isIp } from './ip.js';
import type { Dns, Interface, IpConfig, Result, Route, WireResult } from './types.js';

export { CURRENT_VERSION, SUPPORTED_VERSIONS };

/** [major, minor, patch] of "a.b.c" (missing parts are 0), or undefined when malformed. */
export function parseVersion(v: string): [number, number, number] | undefined {
  const m = /^(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?$/.exec(v);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** Negative, zero or positive as a < b, a == b, a > b; malformed versions sort lowest. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a) ?? [-1, -1, -1];
  const pb = parseVersion(b) ?? [-1, -1, -1];
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** True when version v is at least min. */
export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * The version to speak for a config: the highest supported one among `cniVersion` and
 * `cniVersions` (SPEC §1 "Version considerations"). Without `cniVersions`, `cniVersion`
 * must itself be supported; a missing `cniVersion` means "0.1.0", as in libcni.
 * Throws CniError 6 for wrongly typed fields, 1 when nothing is supported.
 */
export function negotiateVersion(
  conf: { cniVersion?: unknown; cniVersions?: unknown },
  supported: readonly string[] = SUPPORTED_VERSIONS,
): string {
  const { cniVersions } = conf;
  if (conf.cniVersion !== undefined && typeof conf.cniVersion !== 'string') {
    throw new CniError(ErrorCode.DecodingFailure, `cniVersion ${JSON.stringify(conf.cniVersion)} is not a string`);
  }
  const cniVersion: string = conf.cniVersion ?? '';
  let candidates: string[];
  if (cniVersions === undefined) {
    candidates = [cniVersion || '0.1.0'];
  } else {
    if (!Array.isArray(cniVersions) || !cniVersions.every((v) => typeof v === 'string')) {
      throw new CniError(ErrorCode.DecodingFailure, `cniVersions ${JSON.stringify(cniVersions)} is not a list of strings`);
    }
    candidates = [...(cniVersions as string[]), ...(cniVersion ? [cniVersion] : [])];
  }
  const common = candidates.filter((v) => supported.includes(v)).sort(compareVersions);
  const best = common[common.length - 1];
  if (best !== undefined) return best;
  const asked = cniVersions === undefined ? `cniVersion ${JSON.stringify(cniVersion)}` : `cniVersions ${JSON.stringify(candidates)}`;
  throw new CniError(ErrorCode.IncompatibleVersion, `incompatible CNI versions: unsupported ${asked}`, `plugin supports ${supported.join(', ')}`);
}

/** Convert a canonical result to the wire shape of `version` (one of SUPPORTED_VERSIONS). */
export function toWireResult(result: Result, version: string): WireResult {
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `cannot convert a result to unsupported cniVersion ${JSON.stringify(version)}`);
  }
  const legacy = !versionAtLeast(version, '1.0.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces?.length) {
    out.interfaces = result.interfaces.map((i) => (legacy ? pick(i, ['name', 'mac', 'sandbox']) : pick(i, INTERFACE_KEYS)));
  }
  if (result.ips?.length) {
    out.ips = result.ips.map((ip) => {
      const base = pick(ip, ['address', 'gateway', 'interface']);
      return legacy ? { version: addressVersion(ip.address), ...base } : base;
    });
  }
  if (result.routes?.length) out.routes = result.routes.map((r) => pick(r, ROUTE_KEYS));
  if (result.dns && !isEmptyDns(result.dns)) out.dns = pick(result.dns, DNS_KEYS);
  return out as unknown as WireResult;
}

const INTERFACE_KEYS = ['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID'] as const;
const ROUTE_KEYS = ['dst', 'gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const DNS_KEYS = ['nameservers', 'domain', 'search', 'options'] as const;

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function isEmptyDns(d: Dns): boolean {
  return !d.nameservers?.length && !d.domain && !d.search?.length && !d.options?.length;
}

/**
 * Parse a result of any supported version (a `prevResult`, or a delegated plugin's
 * output) into the canonical shape. A missing `cniVersion` means `confVersion`
 * (libcni injects the config's). Field errors are CniError 6 naming `where`.
 */
export function parseResult(raw: unknown, confVersion: string, where = 'prevResult'): Result {
  const obj = asObject(raw, where);
  const version = obj.cniVersion === undefined || obj.cniVersion === '' ? confVersion : obj.cniVersion;
  if (typeof version !== 'string' || !SUPPORTED_VERSIONS.includes(version)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `unsupported ${where}.cniVersion ${JSON.stringify(version)}`, `plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const out: Result = {};
  const interfaces = optArray(obj.interfaces, `${where}.interfaces`).map((v, i) => parseInterface(v, `${where}.interfaces[${i}]`));
  if (interfaces.length) out.interfaces = interfaces;
  const ips = optArray(obj.ips, `${where}.ips`).map((v, i) => parseIpConfig(v, `${where}.ips[${i}]`));
  if (ips.length) out.ips = ips;
  const routes = optArray(obj.routes, `${where}.routes`).map((v, i) => parseRoute(v, `${where}.routes[${i}]`));
  if (routes.length) out.routes = routes;
  if (obj.dns !== undefined && obj.dns !== null) {
    const dns = parseDns(obj.dns, `${where}.dns`);
    if (!isEmptyDns(dns)) out.dns = dns;
  }
  return out;
}

function decodeError(where: string, value: unknown, why: string): CniError {
  return new CniError(ErrorCode.DecodingFailure, `${where} ${JSON.stringify(value)}: ${why}`);
}

function asObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw decodeError(where, v, 'not an object');
  return v as Record<string, unknown>;
}

function optArray(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw decodeError(where, v, 'not a list');
  return v;
}

function optString(o: Record<string, unknown>, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw decodeError(`${where}.${k}`, v, 'not a string');
  return v;
}

function optUint(o: Record<string, unknown>, k: string, where: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw decodeError(`${where}.${k}`, v, 'not a non-negative integer');
  return v;
}

function optStrings(o: Record<string, unknown>, k: string, where: string): string[] | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw decodeError(`${where}.${k}`, v, 'not a list of strings');
  return v.length ? [...(v as string[])] : undefined;
}

function setDefined<T extends object>(target: T, values: Partial<T>): T {
  for (const [k, v] of Object.entries(values)) if (v !== undefined) (target as Record<string, unknown>)[k] = v;
  return target;
}

function parseInterface(v: unknown, where: string): Interface {
  const o = asObject(v, where);
  if (typeof o.name !== 'string' || o.name === '') throw decodeError(`${where}.name`, o.name, 'missing or not a string');
  return setDefined<Interface>({ name: o.name }, {
    mac: optString(o, 'mac', where),
    mtu: optUint(o, 'mtu', where) || undefined,
    sandbox: optString(o, 'sandbox', where),
    socketPath: optString(o, 'socketPath', where),
    pciID: optString(o, 'pciID', where),
  });
}

function parseIpConfig(v: unknown, where: string): IpConfig {
  const o = asObject(v, where);
  if (!isCidr(o.address)) throw decodeError(`${where}.address`, o.address, 'not an IP address with prefix');
  const gateway = optString(o, 'gateway', where);
  if (gateway !== undefined && !isIp(gateway)) throw decodeError(`${where}.gateway`, gateway, 'not an IP address');
  return setDefined<IpConfig>({ address: o.address }, { gateway, interface: optUint(o, 'interface', where) });
}

function parseRoute(v: unknown, where: string): Route {
  const o = asObject(v, where);
  if (!isCidr(o.dst)) throw decodeError(`${where}.dst`, o.dst, 'not an IP prefix');
  const gw = optString(o, 'gw', where);
  if (gw !== undefined && !isIp(gw)) throw decodeError(`${where}.gw`, gw, 'not an IP address');
  return setDefined<Route>({ dst: o.dst }, {
    gw,
    mtu: optUint(o, 'mtu', where) || undefined,
    advmss: optUint(o, 'advmss', where) || undefined,
    priority: optUint(o, 'priority', where) || undefined,
    table: optUint(o, 'table', where),
    scope: optUint(o, 'scope', where),
  });
}

/** Parse a `dns` object (result or config shape; both use the same keys). */
export function parseDns(v: unknown, where: string): Dns {
  const o = asObject(v, where);
  const dns = setDefined<Dns>({}, {
    nameservers: optStrings(o, 'nameservers', where),
    domain: optString(o, 'domain', where),
    search: optStrings(o, 'search', where),
    options: optStrings(o, 'options', where),
  });
  // Nameservers are informational here and libcni does not check them either.
  return dns;
}
