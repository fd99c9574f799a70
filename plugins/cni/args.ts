// Per-attachment inputs as typed values: CNI_ARGS (IP, MAC, K8S_POD_*, IgnoreUnknown)
// and the runtimeConfig capabilities (portMappings, ips, mac, aliases, dns, ipRanges,
// bandwidth) plus `args.cni`. Validated here; drivers never see the untyped maps.
import { CniError, ErrorCode, invalidConfig, invalidEnv, unsupportedField } from './errors.js';
import { cidrFamily, ipFamily, isUnicastMac } from './ip.js';
import type { NetConf } from './types.js';

/** CNI_ARGS keys every tsoverlay plugin understands. */
export const STANDARD_ARG_KEYS: readonly string[] = Object.freeze([
  'IgnoreUnknown', 'IP', 'MAC', 'K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID',
]);

/** Kubernetes identity from CNI_ARGS (all optional). */
export interface K8sPod {
  name?: string;
  namespace?: string;
  infraContainerId?: string;
  uid?: string;
}

/** CNI_ARGS as typed values. */
export interface CniArgs {
  ignoreUnknown: boolean;
  /** `IP=a[,b…]`: each a bare address or address/prefix. */
  ips: string[];
  mac?: string;
  k8s: K8sPod;
  /** Values of the extra keys the plugin declared it knows. */
  extra: Record<string, string>;
}

function parseBool(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/**
 * Type CNI_ARGS pairs. Unknown keys are an error (CniError 4, as libcni's LoadArgs)
 * unless IgnoreUnknown=1; `K8S_POD_*` keys are always tolerated because Kubernetes
 * runtimes send them to every plugin. `known` adds plugin-specific keys to `extra`.
 */
export function parseCniArgs(pairs: ReadonlyArray<readonly [string, string]>, known: readonly string[] = []): CniArgs {
  const out: CniArgs = { ignoreUnknown: false, ips: [], k8s: {}, extra: {} };
  const unknown: string[] = [];
  for (const [key, value] of pairs) {
    switch (key) {
      case 'IgnoreUnknown': {
        const b = parseBool(value);
        if (b === undefined) throw invalidEnv('CNI_ARGS', `IgnoreUnknown=${value}`, 'is not a boolean (want 1, true, 0 or false)');
        out.ignoreUnknown = b;
        break;
      }
      case 'IP':
        out.ips = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
        for (const ip of out.ips) {
          if (ipFamily(ip) === undefined && cidrFamily(ip) === undefined) throw invalidEnv('CNI_ARGS', `IP=${value}`, `has an invalid address ${JSON.stringify(ip)}`);
        }
        break;
      case 'MAC':
        if (!isUnicastMac(value)) throw invalidEnv('CNI_ARGS', `MAC=${value}`, 'is not a unicast MAC address (want xx:xx:xx:xx:xx:xx)');
        out.mac = value.toLowerCase();
        break;
      case 'K8S_POD_NAME': out.k8s.name = value; break;
      case 'K8S_POD_NAMESPACE': out.k8s.namespace = value; break;
      case 'K8S_POD_INFRA_CONTAINER_ID': out.k8s.infraContainerId = value; break;
      case 'K8S_POD_UID': out.k8s.uid = value; break;
      default:
        if (known.includes(key)) out.extra[key] = value;
        else if (!key.startsWith('K8S_POD_')) unknown.push(`${key}=${value}`);
    }
  }
  if (unknown.length && !out.ignoreUnknown) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS has unknown keys ${JSON.stringify(unknown)} (set IgnoreUnknown=1 to ignore them)`);
  }
  return out;
}

/** One validated port mapping. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Absent = every host address. */
  hostIP?: string;
}

/** One validated range of `ipRanges` (host-local `ranges` shape). */
export interface IpRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** `bandwidth` capability: bits per second / bits. */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** `dns` capability (runtime-provided resolver settings). */
export interface RuntimeDns {
  servers: string[];
  searches: string[];
  options: string[];
  domain?: string;
}

/** Everything a runtime asked for this attachment, merged from all sources. */
export interface AttachmentOptions {
  portMappings: PortMapping[];
  /** Requested addresses: runtimeConfig.ips, then args.cni.ips or else CNI_ARGS IP (deduplicated). */
  ips: string[];
  /** runtimeConfig.mac, else args.cni.mac, else CNI_ARGS MAC. */
  mac?: string;
  aliases: string[];
  dns?: RuntimeDns;
  ipRanges: IpRange[][];
  bandwidth?: Bandwidth;
  k8s: K8sPod;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig(field, v, 'not a list');
  return v;
}

function strings(v: unknown, field: string): string[] {
  return list(v, field).map((s, i) => {
    if (typeof s !== 'string') throw invalidConfig(`${field}[${i}]`, s, 'not a string');
    return s;
  });
}

function port(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw invalidConfig(field, v, 'not a port number 1-65535');
  return v;
}

/** Validate `runtimeConfig.portMappings`. */
export function parsePortMappings(v: unknown, field = 'runtimeConfig.portMappings'): PortMapping[] {
  return list(v, field).map((e, i) => {
    const f = `${field}[${i}]`;
    if (!isObj(e)) throw invalidConfig(f, e, 'not an object');
    const proto = e.protocol === undefined || e.protocol === '' ? 'tcp' : e.protocol;
    if (typeof proto !== 'string') throw invalidConfig(`${f}.protocol`, proto, 'not a string');
    const protocol = proto.toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') throw unsupportedField(`${f}.protocol`, proto, 'want tcp, udp or sctp');
    const out: PortMapping = { hostPort: port(e.hostPort, `${f}.hostPort`), containerPort: port(e.containerPort, `${f}.containerPort`), protocol };
    if (e.hostIP !== undefined && e.hostIP !== '') {
      if (ipFamily(e.hostIP) === undefined) throw invalidConfig(`${f}.hostIP`, e.hostIP, 'not an IP address');
      out.hostIP = e.hostIP as string;
    }
    return out;
  });
}

function requestedIps(v: unknown, field: string): string[] {
  return strings(v, field).map((s, i) => {
    if (ipFamily(s) === undefined && cidrFamily(s) === undefined) throw invalidConfig(`${field}[${i}]`, s, 'not an IP address (optionally with /prefix)');
    return s;
  });
}

function mac(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (!isUnicastMac(v)) throw invalidConfig(field, v, 'not a unicast MAC address (want xx:xx:xx:xx:xx:xx)');
  return v.toLowerCase();
}

/** DNS-style names used as aliases: labels of letters, digits, "_" and "-", dot-separated. */
const ALIAS = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

/** `aliases`: a list, or podman's `{ <network name>: [...] }` (the entry for `network`). */
export function parseAliases(v: unknown, network: string, field = 'runtimeConfig.aliases'): string[] {
  let names: string[];
  if (isObj(v)) names = Object.hasOwn(v, network) ? strings(v[network], `${field}.${network}`) : [];
  else names = strings(v, field);
  for (const n of names) if (!ALIAS.test(n)) throw invalidConfig(field, n, 'not a valid DNS name');
  return [...new Set(names)];
}

function runtimeDns(v: unknown, field: string): RuntimeDns | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalidConfig(field, v, 'not an object');
  const servers = strings(v.servers, `${field}.servers`);
  for (const s of servers) if (ipFamily(s) === undefined) throw invalidConfig(`${field}.servers`, s, 'not an IP address');
  const out: RuntimeDns = { servers, searches: strings(v.searches, `${field}.searches`), options: strings(v.options, `${field}.options`) };
  if (v.domain !== undefined && v.domain !== '') {
    if (typeof v.domain !== 'string') throw invalidConfig(`${field}.domain`, v.domain, 'not a string');
    out.domain = v.domain;
  }
  return out;
}

/** Validate `ipRanges` (a list of allocations, each a list of candidate ranges). */
export function parseIpRanges(v: unknown, field = 'runtimeConfig.ipRanges'): IpRange[][] {
  return list(v, field).map((set, i) =>
    list(set, `${field}[${i}]`).map((r, j) => {
      const f = `${field}[${i}][${j}]`;
      if (!isObj(r)) throw invalidConfig(f, r, 'not an object');
      const family = cidrFamily(r.subnet);
      if (family === undefined) throw invalidConfig(`${f}.subnet`, r.subnet, 'not a CIDR');
      const out: IpRange = { subnet: r.subnet as string };
      for (const k of ['rangeStart', 'rangeEnd', 'gateway'] as const) {
        if (r[k] === undefined || r[k] === '') continue;
        if (ipFamily(r[k]) !== family) throw invalidConfig(`${f}.${k}`, r[k], `not an IPv${family} address`);
        out[k] = r[k] as string;
      }
      return out;
    }),
  );
}

function bandwidth(v: unknown, field: string): Bandwidth | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalidConfig(field, v, 'not an object');
  const out: Bandwidth = {};
  for (const k of ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const) {
    const n = v[k];
    if (n === undefined || n === null) continue;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalidConfig(`${field}.${k}`, n, 'not a non-negative integer');
    out[k] = n;
  }
  return out;
}

/**
 * Merge runtimeConfig, `args.cni` and CNI_ARGS into typed attachment options. Per the
 * CNI conventions, `args.cni.ips`/`mac` win over the CNI_ARGS fields of the same meaning.
 * Throws CniError 7 (bad value) or 2 (unsupported protocol), naming the field.
 */
export function parseAttachmentOptions(conf: NetConf, cniArgs: CniArgs): AttachmentOptions {
  const rc: Obj = conf.runtimeConfig === undefined ? {} : (conf.runtimeConfig as unknown as Obj);
  if (!isObj(rc)) throw invalidConfig('runtimeConfig', rc, 'not an object');
  const argsCni: Obj = isObj(conf.args) && isObj(conf.args.cni) ? conf.args.cni : {};
  const fromArgs = argsCni.ips !== undefined ? requestedIps(argsCni.ips, 'args.cni.ips') : cniArgs.ips;
  const out: AttachmentOptions = {
    portMappings: parsePortMappings(rc.portMappings),
    ips: [...new Set([...requestedIps(rc.ips, 'runtimeConfig.ips'), ...fromArgs])],
    aliases: rc.aliases === undefined ? [] : parseAliases(rc.aliases, conf.name),
    ipRanges: parseIpRanges(rc.ipRanges),
    k8s: cniArgs.k8s,
  };
  const m = mac(rc.mac, 'runtimeConfig.mac') ?? mac(argsCni.mac, 'args.cni.mac') ?? cniArgs.mac;
  if (m !== undefined) out.mac = m;
  const dns = runtimeDns(rc.dns, 'runtimeConfig.dns');
  if (dns) out.dns = dns;
  const bw = bandwidth(rc.bandwidth, 'runtimeConfig.bandwidth');
  if (bw) out.bandwidth = bw;
  return out;
}
