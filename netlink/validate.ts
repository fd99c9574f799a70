// Validation of every value that reaches an iproute2/sysctl command line (names, MACs, IPs, paths, keys).
// Stricter than the kernel on purpose: tokens never contain whitespace, quotes, '#' or '\' (batch syntax).
import { isIP } from 'node:net';
import { invalid } from './errors.js';

export type Family = 4 | 6;

/** A parsed address with prefix: `10.0.0.2/24` → { address: '10.0.0.2', prefixLen: 24, family: 4 }. */
export interface Cidr {
  address: string;
  prefixLen: number;
  family: Family;
}

const IFNAME_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/;

/**
 * Check an interface name: 1–15 bytes (IFNAMSIZ-1), no '/', ':' or whitespace, not '.' or '..'.
 * We also allow only letters, digits, '_', '.', '-' and no leading '-', so names are safe
 * as argv and batch tokens. Returns the name.
 */
export function validateIfName(name: unknown, field = 'interface name'): string {
  if (typeof name !== 'string' || name.length === 0) throw invalid(field, name, 'must be a non-empty string');
  if (Buffer.byteLength(name) > 15) throw invalid(field, name, 'longer than 15 bytes');
  if (name === '.' || name === '..') throw invalid(field, name, "'.' and '..' are reserved");
  if (!IFNAME_RE.test(name)) throw invalid(field, name, "only letters, digits, '_', '.', '-' (not leading) are allowed");
  return name;
}

/** Check a MAC address (`aa:bb:cc:dd:ee:ff`); returns it in lower case. */
export function validateMac(mac: unknown, field = 'MAC address'): string {
  if (typeof mac !== 'string' || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) {
    throw invalid(field, mac, 'expected six colon-separated hex octets');
  }
  return mac.toLowerCase();
}

/** Check an IPv4 or IPv6 address without prefix or zone; returns its family. */
export function validateIp(ip: unknown, field = 'IP address'): Family {
  const fam = typeof ip === 'string' && !ip.includes('%') ? isIP(ip) : 0;
  if (fam !== 4 && fam !== 6) throw invalid(field, ip, 'not an IPv4 or IPv6 address');
  return fam;
}

/** Parse `addr/len` (host bits may be set, as for interface addresses). A bare address gets /32 or /128. */
export function parseCidr(cidr: unknown, field = 'CIDR'): Cidr {
  if (typeof cidr !== 'string') throw invalid(field, cidr, 'must be a string');
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = validateIp(address, field);
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefixLen: max, family };
  const lenText = cidr.slice(slash + 1);
  const prefixLen = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(prefixLen >= 0 && prefixLen <= max)) throw invalid(field, cidr, `prefix length must be 0–${max}`);
  return { address, prefixLen, family };
}

/** Format a Cidr back to text. */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefixLen}`;
}

/**
 * Check a network namespace path (`/var/run/netns/x`, `/proc/<pid>/ns/net`, `/run/netns/netns-<uuid>`):
 * absolute, no '..' segment, only `[A-Za-z0-9._@:+/-]`. Existence is checked by the kernel at use.
 */
export function validateNetnsPath(path: unknown, field = 'netns path'): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 1024) {
    throw invalid(field, path, 'must be an absolute path');
  }
  if (!/^\/[A-Za-z0-9._@:+/-]*$/.test(path)) throw invalid(field, path, 'contains characters outside [A-Za-z0-9._@:+/-]');
  if (path.split('/').some((s) => s === '..')) throw invalid(field, path, "must not contain '..'");
  return path;
}

/** Check an integer in [min, max]. */
export function validateInt(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(field, v, `must be an integer in ${min}–${max}`);
  }
  return v;
}

/** Link group: 1–4294967295 (0 is the kernel's "default" group that holds every other link). */
export function validateGroup(g: unknown, field = 'link group'): number {
  return validateInt(g, 1, 0xffffffff, field);
}

/** Routing table: 'main', 'local', or a number 1–4294967295 (254/255 are main/local). */
export function validateTable(t: unknown, field = 'route table'): string {
  if (t === 'main' || t === 'local') return t;
  return String(validateInt(t, 1, 0xffffffff, field));
}

const SYSCTL_DOTTED = /^net(\.[A-Za-z0-9_-]+)+$/;
const SYSCTL_SEGMENT = /^[A-Za-z0-9_.-]+$/;

/**
 * Check a sysctl key and return its slash form (`net/ipv4/ip_forward`). Only `net.*` keys are
 * accepted: they are the per-namespace ones; anything else would change the whole host.
 * Dotted form (`net.ipv4.conf.eth0.forwarding`) or slash form (`net/ipv4/conf/eth0.1/forwarding`,
 * needed when an interface name contains '.').
 */
export function validateSysctlKey(key: unknown, field = 'sysctl key'): string {
  if (typeof key !== 'string' || key.length > 256) throw invalid(field, key, 'must be a string');
  if (key.includes('/')) {
    const segs = key.split('/');
    const ok = segs[0] === 'net' && segs.length > 1 && segs.every((s) => SYSCTL_SEGMENT.test(s) && s !== '.' && s !== '..');
    if (!ok) throw invalid(field, key, "slash form must be net/<segment>/… with segments of [A-Za-z0-9_.-]");
    return key;
  }
  if (!SYSCTL_DOTTED.test(key)) throw invalid(field, key, 'must be a net.* key of [A-Za-z0-9_-] segments');
  return key.split('.').join('/');
}

/**
 * The slash-form key of a per-interface setting, safe for names with '.':
 * `confSysctlKey(4, 'eth0.5', 'route_localnet')` → `net/ipv4/conf/eth0.5/route_localnet`.
 */
export function confSysctlKey(family: Family, ifname: string, leaf: string): string {
  const dev = ifname === 'all' || ifname === 'default' ? ifname : validateIfName(ifname);
  if (!/^[A-Za-z0-9_]+$/.test(leaf)) throw invalid('sysctl name', leaf, 'expected [A-Za-z0-9_]+');
  return `net/${family === 4 ? 'ipv4' : 'ipv6'}/conf/${dev}/${leaf}`;
}

/** Check a sysctl value (number, boolean → 1/0, or a short string of [A-Za-z0-9_.:, -]). */
export function validateSysctlValue(v: unknown, field = 'sysctl value'): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && /^[A-Za-z0-9_.:, -]{1,256}$/.test(v)) return v;
  throw invalid(field, v, 'must be a number, boolean or a short plain string');
}

/** Defence in depth for batch input: a token must be non-empty and free of batch syntax. */
export function assertToken(tok: string): string {
  if (tok.length === 0 || /[\s"'#\\]/.test(tok)) throw invalid('command token', tok, 'unsafe for a batch line');
  return tok;
}
