// IP addresses as the index keeps them (canonical text + wire bytes) and the reverse-lookup
// names of RFC 1035 3.5 (in-addr.arpa) and RFC 3596 2.5 (ip6.arpa).
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ipv6Text } from './message.js';

/** An address in canonical text (dotted quad, RFC 5952) with its 4 or 16 wire bytes. */
export interface Addr {
  ip: string;
  family: 4 | 6;
  bytes: Buffer;
}

/**
 * Parse "10.0.0.2", "10.0.0.2/24", "fd00::2/64" or "fe80::1%eth0" (the prefix length and
 * zone are dropped). IPv4-mapped IPv6 addresses become IPv4. Undefined for anything else.
 */
export function parseAddress(text: unknown): Addr | undefined {
  if (typeof text !== 'string') return undefined;
  let s = text.trim();
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const fam = isIP(s);
  if (fam === 4) {
    const bytes = Buffer.from(s.split('.').map(Number));
    return { ip: bytes.join('.'), family: 4, bytes };
  }
  if (fam !== 6) return undefined;
  const parsed = ipaddr.IPv6.parse(s);
  if (parsed.isIPv4MappedAddress()) return parseAddress(parsed.toIPv4Address().toString());
  const bytes = Buffer.from(parsed.toByteArray());
  return { ip: ipv6Text(bytes), family: 6, bytes };
}

/** Canonical text of a client address as a socket reports it (zone and v4-mapping removed). */
export function clientIp(address: string): string {
  if (address.indexOf(':') < 0) return address;
  return parseAddress(address)?.ip ?? address;
}

/** The reverse-lookup name key of an address (e.g. "2.0.0.10.in-addr.arpa"). */
export function reverseName(a: Addr): string {
  if (a.family === 4) return `${[...a.bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    const b = a.bytes[i]!;
    nibbles.push((b & 0xf).toString(16), (b >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

const V4_REV = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/;
const V6_REV = /^((?:[0-9a-f]\.){32})ip6\.arpa$/;

/** The canonical address a full reverse name stands for, or undefined (partial names too). */
export function addressOfReverse(name: string): string | undefined {
  const m4 = V4_REV.exec(name);
  if (m4) {
    const parts = [m4[4], m4[3], m4[2], m4[1]].map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return parts.join('.');
  }
  const m6 = V6_REV.exec(name);
  if (!m6) return undefined;
  const n = m6[1]!.split('.').slice(0, 32).reverse();
  const bytes = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(n[2 * i]! + n[2 * i + 1]!, 16);
  return ipv6Text(bytes);
}

/** True for names under in-addr.arpa or ip6.arpa. */
export function isReverseName(name: string): boolean {
  return name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa') || name === 'in-addr.arpa' || name === 'ip6.arpa';
}

/** True when ip (canonical) lies in cidr ("10.0.0.0/24"); false for malformed input. */
export function cidrContains(cidr: string, ip: string): boolean {
  try {
    const [net, len] = ipaddr.parseCIDR(cidr);
    const a = ipaddr.parse(ip);
    if (a.kind() !== net.kind()) return false;
    return a.match(net, len);
  } catch {
    return false;
  }
}
