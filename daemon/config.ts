// The daemon's configuration: defaults, then a config file (YAML or JSON, keys are the
// flags' names in camelCase), then TSOVERLAY_* environment variables, then flags.
// Every value is validated here; an unknown key or a bad value is an error naming it.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseDocument, type Document } from 'yaml';
import { defaultHostId } from '../plugins/cni/host-state.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A resolver address for DNS forwarding. */
export interface Upstream {
  host: string;
  port: number;
}

/** The daemon's validated configuration. */
export interface DaemonConfig {
  store: string;
  stateDir: string;
  hostId: string;
  /** Undefined: detect at start-up (default-route interface, else first global address). */
  advertise?: string;
  pluginDir: string;
  socket: string;
  /** Undefined: no metrics listener. */
  metrics?: { host: string; port: number };
  logLevel: LogLevel;
  dnsDomain: string;
  dnsPort: number;
  /** Undefined: the host's /etc/resolv.conf nameservers. */
  dnsUpstream?: Upstream[];
  dockerHost: string;
  /** Seconds between reconcile passes that repair the kernel and firewall from the store (0: start-up only). */
  reconcileInterval: number;
  /** Which firewall backend programs the rules, chosen once at start-up (proxy/backend.ts). */
  firewallBackend: 'iptables' | 'nft';
}

/** Raw values by camelCase key, as strings or as the file's JSON/YAML types. */
export type RawConfig = Record<string, unknown>;

export class ConfigError extends Error {
  readonly code = 'invalid-config';
  readonly kind = 'bad-request';
  readonly retryable = false;
}

/** The keys a config file, the environment and flags may set. */
export const CONFIG_KEYS = [
  'store',
  'stateDir',
  'hostId',
  'advertise',
  'pluginDir',
  'socket',
  'metrics',
  'logLevel',
  'dnsDomain',
  'dnsPort',
  'dnsUpstream',
  'dockerHost',
  'reconcileInterval',
  'firewallBackend',
] as const;
type ConfigKey = (typeof CONFIG_KEYS)[number];

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DOMAIN = /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+$/;

function str(key: string, v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`${key}: expected a non-empty string, got ${JSON.stringify(v)}`);
  return v.trim();
}

function absPath(key: string, v: unknown): string {
  const s = str(key, v);
  if (!s.startsWith('/')) throw new ConfigError(`${key}: expected an absolute path, got "${s}"`);
  // A NUL cannot be in a path (every fs call would throw); other controls are never meant.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new ConfigError(`${key}: expected a path without control characters, got ${JSON.stringify(s)}`);
  return s;
}

function port(key: string, v: unknown): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v).trim()) ? Number(String(v).trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`${key}: expected a port 1-65535, got ${JSON.stringify(v)}`);
  return n;
}

/** Parse "ADDR:PORT" or "[v6]:PORT". */
export function parseHostPort(key: string, v: unknown, defaultPort?: number): { host: string; port: number } {
  const s = str(key, v);
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  const host = m?.[1];
  const p = m?.[2] ?? (defaultPort !== undefined ? String(defaultPort) : undefined);
  if (!m && isIP(s) === 6 && defaultPort !== undefined) return { host: s, port: defaultPort };
  if (!host || !isIP(host) || p === undefined) throw new ConfigError(`${key}: expected IP:PORT, got "${s}"`);
  return { host, port: port(key, p) };
}

function upstreams(key: string, v: unknown): Upstream[] {
  const items = Array.isArray(v) ? v : str(key, v).split(',');
  const list = items.map((item) => parseHostPort(key, item, 53));
  if (list.length === 0 || list.length > 3) throw new ConfigError(`${key}: expected 1 to 3 resolvers, got ${list.length}`);
  return list;
}

function storeUrl(key: string, v: unknown): string {
  const s = str(key, v);
  if (!/^(sqlite:\/\/\/|etcds?:\/\/)/.test(s)) throw new ConfigError(`${key}: expected sqlite:///PATH or etcd://HOST:PORT[,…][/prefix], got "${s}"`);
  return s;
}

const PARSERS: Record<ConfigKey, (key: string, v: unknown) => unknown> = {
  store: storeUrl,
  stateDir: absPath,
  hostId: (k, v) => {
    const s = str(k, v);
    if (!HOST_ID.test(s)) throw new ConfigError(`${k}: expected 1-63 letters, digits, '.', '_' or '-', got "${s}"`);
    return s;
  },
  advertise: (k, v) => {
    const s = str(k, v);
    if (!isIP(s)) throw new ConfigError(`${k}: expected an IP address, got "${s}"`);
    return s;
  },
  pluginDir: absPath,
  socket: absPath,
  metrics: (k, v) => parseHostPort(k, v),
  logLevel: (k, v) => {
    const s = str(k, v);
    if (!(LOG_LEVELS as readonly string[]).includes(s)) throw new ConfigError(`${k}: expected one of ${LOG_LEVELS.join(', ')}, got "${s}"`);
    return s;
  },
  dnsDomain: (k, v) => {
    let s = str(k, v).toLowerCase();
    if (!s.endsWith('.')) s += '.';
    if (!DOMAIN.test(s) || s.length > 253) throw new ConfigError(`${k}: expected a domain name, got "${str(k, v)}"`);
    return s;
  },
  dnsPort: port,
  dnsUpstream: upstreams,
  reconcileInterval: (k, v) => {
    const n = typeof v === 'number' ? v : /^\d+$/.test(String(v).trim()) ? Number(String(v).trim()) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 86400) throw new ConfigError(`${k}: expected seconds 0-86400, got ${JSON.stringify(v)}`);
    return n;
  },
  firewallBackend: (k, v) => {
    const s = str(k, v);
    if (s !== 'iptables' && s !== 'nft') throw new ConfigError(`${k}: expected iptables or nft, got "${s}"`);
    return s;
  },
  dockerHost: (k, v) => {
    const s = str(k, v);
    if (!/^(unix:\/\/\/|tcp:\/\/)/.test(s)) throw new ConfigError(`${k}: expected unix:///PATH or tcp://HOST:PORT, got "${s}"`);
    return s;
  },
};

/**
 * Largest config file read. Real ones are a few hundred bytes; the YAML parser's duplicate-key
 * check is quadratic (a 1 MB mapping takes minutes), so a bigger file is refused unparsed.
 */
export const MAX_CONFIG_BYTES = 64 * 1024;

/** Read a YAML or JSON config file into raw values; a bad file is a ConfigError naming it. */
export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new ConfigError(`config file ${path}: larger than ${MAX_CONFIG_BYTES} bytes`);
  let data: unknown;
  try {
    // YAML is a superset of JSON. parseDocument prints no warnings: an unknown tag is refused below.
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw doc.errors[0]!;
    refuseUnknownTags(path, doc);
    data = doc.toJS();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`config file ${path}: expected a mapping of keys to values`);
  return data as RawConfig;
}

/**
 * Refuse a tag the YAML schema does not know (`logLevel: !foo debug`): the parser would read
 * the value as a plain string, hiding a typo or a file meant for another program. The error
 * names the top-level key the tag sits in (the first pair ending after it).
 */
function refuseUnknownTags(path: string, doc: Document): void {
  const w = doc.warnings.find((x) => x.code === 'TAG_RESOLVE_FAILED');
  if (!w) return;
  const tag = /Unresolved tag: (\S+)/.exec(w.message)?.[1] ?? '?';
  const pairs = (doc.contents as { items?: { key?: { value?: unknown; range?: number[] }; value?: { range?: number[] } | null }[] } | null)?.items ?? [];
  const pair = pairs.find((p) => ((p.value?.range ?? p.key?.range)?.[2] ?? -1) > w.pos[0]);
  const onRoot = (doc.contents as { tag?: string } | null)?.tag === tag;
  const where = !onRoot && pair && pair.key ? `key ${JSON.stringify(String(pair.key.value).slice(0, 64))}` : 'document';
  const line = w.linePos?.[0]?.line;
  throw new ConfigError(
    `config file ${path}: ${where}: unknown YAML tag ${JSON.stringify(tag.slice(0, 64))}${line ? ` (line ${line})` : ''}; write the plain value without a tag`,
  );
}

/** TSOVERLAY_STATE_DIR=… → { stateDir: … } for every known key. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const out: RawConfig = {};
  for (const key of CONFIG_KEYS) {
    const name = `TSOVERLAY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

/**
 * Merge layers (later wins) and validate. `source` names each layer in errors.
 * Undefined values in a layer are skipped (flags not given).
 */
export function resolveConfig(layers: { source: string; values: RawConfig }[]): DaemonConfig {
  const merged: Partial<Record<ConfigKey, unknown>> = {};
  for (const { source, values } of layers) {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) continue;
      if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
        throw new ConfigError(`${source}: unknown key "${key}" (known: ${CONFIG_KEYS.join(', ')})`);
      }
      try {
        merged[key as ConfigKey] = PARSERS[key as ConfigKey](key, value);
      } catch (err) {
        throw err instanceof ConfigError ? new ConfigError(`${source}: ${err.message}`) : err;
      }
    }
  }
  const stateDir = (merged.stateDir as string | undefined) ?? '/var/lib/tsoverlay';
  return {
    store: (merged.store as string | undefined) ?? `sqlite://${stateDir}/store.db`,
    stateDir,
    // The same default the standalone CNI executables use (plugins/cni/host-state.ts).
    hostId: (merged.hostId as string | undefined) ?? defaultHostId(),
    advertise: merged.advertise as string | undefined,
    pluginDir: (merged.pluginDir as string | undefined) ?? '/run/docker/plugins',
    socket: (merged.socket as string | undefined) ?? '/run/tsoverlay/tsoverlay.sock',
    metrics: merged.metrics as DaemonConfig['metrics'],
    logLevel: (merged.logLevel as LogLevel | undefined) ?? 'info',
    dnsDomain: (merged.dnsDomain as string | undefined) ?? 'tsoverlay.',
    dnsPort: (merged.dnsPort as number | undefined) ?? 53,
    dnsUpstream: merged.dnsUpstream as Upstream[] | undefined,
    dockerHost: (merged.dockerHost as string | undefined) ?? 'unix:///var/run/docker.sock',
    reconcileInterval: (merged.reconcileInterval as number | undefined) ?? 30,
    firewallBackend: (merged.firewallBackend as DaemonConfig['firewallBackend'] | undefined) ?? 'iptables',
  };
}

/** Nameservers of a resolv.conf text (at most 3, as the resolver uses). */
export function resolvConfNameservers(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const ip = m?.[1]?.split('%')[0];
    if (ip && isIP(ip) && out.length < 3) out.push({ host: ip, port: 53 });
  }
  return out;
}
