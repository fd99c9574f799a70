// Small address checks shared by the CNI protocol modules (node:net only, no parsing
// library): IP, IP/prefix, MAC. They validate text; they never normalise it.
import { isIPv4, isIPv6 } from 'node:net';

/** 4 or 6 for a bare IP address (no zone, no prefix), else undefined. */
export function ipFamily(s: unknown): 4 | 6 | undefined {
  if (typeof s !== 'string' || s.includes('%')) return undefined;
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return undefined;
}

/** True for a bare IPv4 or IPv6 address. */
export function isIp(s: unknown): s is string {
  return ipFamily(s) !== undefined;
}

/**
 * The family of "address/prefix" (prefix 0–32 or 0–128, decimal without sign or
 * leading zeros beyond "0"), else undefined.
 */
export function cidrFamily(s: unknown): 4 | 6 | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0 || slash !== s.lastIndexOf('/')) return undefined;
  const family = ipFamily(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  if (family === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefix)) return undefined;
  return Number(prefix) <= (family === 4 ? 32 : 128) ? family : undefined;
}

/** True for "address/prefix". */
export function isCidr(s: unknown): s is string {
  return cidrFamily(s) !== undefined;
}

/**
 * The result `version` field of 0.3.x/0.4.0 for an address: "4" also for an
 * IPv4-mapped IPv6 address, as libcni does (net.IP.To4).
 */
export function addressVersion(address: string): '4' | '6' {
  const ip = address.split('/')[0] ?? '';
  if (ipFamily(ip) === 4) return '4';
  return /^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(ip) ? '4' : '6';
}

/** True for a 48-bit MAC written as six colon-separated hex octets. */
export function isMac(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s);
}

/** True for a MAC an interface can carry: unicast (I/G bit clear) and not all zeros. */
export function isUnicastMac(s: unknown): s is string {
  if (!isMac(s)) return false;
  const first = parseInt(s.slice(0, 2), 16);
  return (first & 1) === 0 && s !== '00:00:00:00:00:00';
}
