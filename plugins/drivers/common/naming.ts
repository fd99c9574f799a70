// Names and MACs derived from ids and addresses, shared by the drivers that make veth pairs:
// short, stable, valid interface names, and Docker-style MACs derived from the address.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { validateIfName } from '../../../netlink/index.js';

/** First `n` hex digits of sha256(text). */
export function shortHash(text: string, n = 12): string {
  return createHash('sha256').update(text).digest('hex').slice(0, n);
}

/**
 * The two ends of an endpoint's veth pair: `<hostPrefix><hash>` stays on the host (on the
 * bridge), `<peerPrefix><hash>` is the engine-mode peer before it is moved and renamed.
 * Prefixes are 3 characters so a name is 15 (IFNAMSIZ-1) with a 12-digit hash.
 */
export function vethNames(endpointId: string, hostPrefix = 'tso', peerPrefix = 'tsc'): { host: string; peer: string } {
  const h = shortHash(endpointId, 15 - Math.max(hostPrefix.length, peerPrefix.length));
  return { host: validateIfName(hostPrefix + h), peer: validateIfName(peerPrefix + h) };
}

/**
 * A locally administered unicast MAC derived from the address, as Docker's bridge does:
 * 02:42 followed by the four IPv4 octets (or the last four bytes of an IPv6 address). The
 * same address always gets the same MAC, so peers' ARP caches stay right across restarts.
 */
export function macFromAddress(ip: string): string {
  let bytes: number[];
  if (isIP(ip) === 4) {
    bytes = ip.split('.').map(Number);
  } else if (isIP(ip) === 6) {
    bytes = ipv6Bytes(ip).slice(12);
  } else {
    throw new TypeError(`not an IP address: ${ip}`);
  }
  return [0x02, 0x42, ...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function ipv6Bytes(ip: string): number[] {
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}
