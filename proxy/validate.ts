// Validators for every value that can reach rendered iptables text or a store key. Each returns
// the canonical form (the one iptables-save prints) or throws a bad-request ProxyError.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ProxyError } from './errors.js';

export type Family = 4 | 6;
export type Proto = 'tcp' | 'udp' | 'sctp';

export const PROTOS: readonly Proto[] = ['tcp', 'udp', 'sctp'];

/** A port number 1..65535 (0 only when `allowZero`, meaning "choose one"). */
export function port(value: unknown, field: string, allowZero = false): number {
  const n = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw new ProxyError('invalid-port', `${field}: ${JSON.stringify(value)} is not a port (${allowZero ? 0 : 1}..65535)`);
  }
  return n;
}

/** tcp, udp or sctp (case-insensitive; Docker's numeric 6/17/132 too). */
export function proto(value: unknown, field = 'protocol'): Proto {
  const byNumber: Record<string, Proto> = { '6': 'tcp', '17': 'udp', '132': 'sctp' };
  const s = typeof value === 'number' ? byNumber[String(value)] : typeof value === 'string' ? value.toLowerCase() : undefined;
  if (s === 'tcp' || s === 'udp' || s === 'sctp') return s;
  throw new ProxyError('invalid-protocol', `${field}: unknown protocol ${JSON.stringify(value)} (tcp, udp or sctp)`);
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** A canonical dotted quad (no leading zeros): the fast path for the common case. */
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

/** An IP address, canonical (IPv6 compressed, lower case). IPv4-mapped IPv6 and zones are refused. */
export function ip(value: unknown, field: string): { addr: string; family: Family } {
  if (typeof value === 'string' && IPV4.test(value)) return { addr: value, family: 4 };
  const family = typeof value === 'string' ? isIP(value) : 0;
  if (family === 4) return { addr: ipaddr.IPv4.parse(value as string).toString(), family: 4 };
  if (family === 6 && !(value as string).includes('%')) {
    const a = ipaddr.IPv6.parse(value as string);
    if (!a.isIPv4MappedAddress()) return { addr: a.toRFC5952String(), family: 6 };
  }
  throw new ProxyError('invalid-address', `${field}: ${JSON.stringify(value)} is not an IP address`);
}

/** The family of an address already validated. */
export function familyOf(addr: string): Family {
  return addr.includes(':') ? 6 : 4;
}

/** A CIDR in canonical network form ("172.18.0.1/16" -> "172.18.0.0/16"), as iptables prints it. */
export function cidr(value: unknown, field: string): { cidr: string; family: Family; prefix: number } {
  const bad = () => new ProxyError('invalid-address', `${field}: ${JSON.stringify(value)} is not a CIDR`);
  if (typeof value !== 'string' || !/^[0-9A-Fa-f.:]+\/\d{1,3}$/.test(value)) throw bad();
  const [addr, len] = value.split('/') as [string, string];
  const { family } = ip(addr, field);
  const prefix = Number(len);
  if (prefix > (family === 4 ? 32 : 128)) throw bad();
  if (prefix === (family === 4 ? 32 : 128)) return { cidr: `${ip(addr, field).addr}/${prefix}`, family, prefix };
  const net = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(value) : ipaddr.IPv6.networkAddressFromCIDR(value);
  const base = net.kind() === 'ipv6' ? (net as ipaddr.IPv6).toRFC5952String() : net.toString();
  return { cidr: `${base}/${prefix}`, family, prefix };
}

function v4int(a: string): number {
  const p = a.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** True when addr (canonical) lies in the canonical CIDR c. */
export function contains(c: string, addr: string): boolean {
  const slash = c.indexOf('/');
  const base = c.slice(0, slash);
  if (IPV4.test(base)) {
    if (!IPV4.test(addr)) return false;
    const len = Number(c.slice(slash + 1));
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return ((v4int(addr) & mask) >>> 0) === ((v4int(base) & mask) >>> 0);
  }
  const [net, len] = ipaddr.parseCIDR(c);
  const a = ipaddr.parse(addr);
  return a.kind() === net.kind() && a.match(net, len);
}

/** A host address as a rule operand: 1.2.3.4/32 or fd00::1/128. */
export function hostCidr(addr: string): string {
  return `${addr}/${familyOf(addr) === 4 ? 32 : 128}`;
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** A Linux interface name (1..15 chars, no '/', ':', spaces or wildcards). */
export function ifname(value: unknown, field = 'bridge'): string {
  if (typeof value !== 'string' || !IFNAME.test(value) || value === '.' || value === '..') {
    throw new ProxyError('invalid-name', `${field}: ${JSON.stringify(value)} is not an interface name`);
  }
  return value;
}

const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

/** An id or name (network, endpoint, service): 1..128 of [A-Za-z0-9_.:@-], starting alphanumeric. */
export function objectName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !OBJECT_NAME.test(value)) {
    throw new ProxyError('invalid-name', `${field}: ${JSON.stringify(value)} is not a valid name`);
  }
  return value;
}

const CHAIN = /^TSO-[A-Z0-9-]{1,24}$/;

/** One of our chain names: TSO-…, at most 28 characters (the kernel's limit is 28 + NUL). */
export function chainName(value: string): string {
  if (!CHAIN.test(value)) throw new ProxyError('internal', `chain name ${JSON.stringify(value)} is outside the TSO- scheme`);
  return value;
}
