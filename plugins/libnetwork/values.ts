// Validators for the scalar values the engine sends: IPs, CIDRs, MACs, interface names,
// booleans, integers and object IDs. Pure functions; each throws a bad-request PluginError
// produced by the caller-supplied `fail(why)` so messages name the option or field.

import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { badField } from './errors.js';

/** Builds the error for a value; the validators pass a short reason. */
export type Fail = (why: string) => Error;

/** Go's strconv.ParseBool spellings, which the engine's own drivers accept. */
const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

/** A boolean from a JSON boolean or a ParseBool string ("true"/"false"/"1"/"0"/…). */
export function parseBool(value: unknown, fail: Fail): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (TRUE.has(value)) return true;
    if (FALSE.has(value)) return false;
  }
  throw fail('must be true or false');
}

/** An integer in [min, max] from a JSON number or a decimal string. */
export function parseIntIn(value: unknown, min: number, max: number, fail: Fail): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*[+-]?\d{1,10}\s*$/.test(value)) n = Number(value);
  else throw fail(`must be an integer ${min}..${max}`);
  if (!Number.isInteger(n) || n < min || n > max) throw fail(`must be an integer ${min}..${max}`);
  return n;
}

/** A bare IPv4 or IPv6 address in canonical text form (dotted quad / RFC 5952). */
export function parseIp(value: unknown, fail: Fail): string {
  if (typeof value !== 'string') throw fail('must be an IP address');
  if (isIPv4(value)) return ipaddr.IPv4.parse(value).toString();
  if (isIPv6(value) && !value.includes('%')) return ipaddr.IPv6.parse(value).toString();
  throw fail('must be an IP address');
}

/** The address family of a canonical IP. */
export function familyOf(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

/** "address/prefix" with the address kept as given (gateways, endpoint addresses). */
export function parseAddressCidr(value: unknown, fail: Fail): string {
  const { ip, prefix } = splitCidr(value, fail);
  return `${ip}/${prefix}`;
}

/** "network/prefix" with host bits cleared (pools, subnets). */
export function parseNetworkCidr(value: unknown, fail: Fail): string {
  const { ip, prefix } = splitCidr(value, fail);
  const net = familyOf(ip) === 4
    ? ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${prefix}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${ip}/${prefix}`);
  return `${net.toString()}/${prefix}`;
}

/** True when CIDR `inner` lies inside CIDR `outer` (both canonical, same family). */
export function cidrContains(outer: string, inner: string): boolean {
  const [oAddr, oLen] = ipaddr.parseCIDR(outer);
  const [iAddr, iLen] = ipaddr.parseCIDR(inner);
  if (oAddr.kind() !== iAddr.kind() || iLen < oLen) return false;
  return iAddr.match(oAddr, oLen);
}

function splitCidr(value: unknown, fail: Fail): { ip: string; prefix: number } {
  if (typeof value !== 'string') throw fail('must be a CIDR (address/prefix)');
  const slash = value.indexOf('/');
  if (slash < 0) throw fail('must be a CIDR (address/prefix)');
  const ip = parseIp(value.slice(0, slash), () => fail('must be a CIDR (address/prefix)'));
  const max = familyOf(ip) === 4 ? 32 : 128;
  const digits = value.slice(slash + 1);
  const prefix = Number(digits);
  if (!/^\d{1,3}$/.test(digits) || prefix > max) throw fail(`prefix must be 0..${max}`);
  return { ip, prefix };
}

/** A 6-byte MAC in "aa:bb:cc:dd:ee:ff" (or "-"-separated) text, returned lower-case with ':'. */
export function parseMac(value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !/^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/.test(value)) {
    throw fail('must be a MAC address like 02:42:ac:11:00:02');
  }
  return value.replace(/-/g, ':').toLowerCase();
}

/** A 6-byte MAC sent as base64 (Go's JSON form of net.HardwareAddr). */
export function parseBase64Mac(value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]{8}$/.test(value)) {
    throw fail('must be a base64-encoded 6-byte MAC address');
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== 6) throw fail('must be a base64-encoded 6-byte MAC address');
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * A Linux interface name (the kernel's dev_valid_name rules: 1..15 bytes, not "." or "..",
 * no '/', ':' or whitespace), further limited to printable ASCII so it is safe in every tool.
 */
export function parseIfName(value: unknown, fail: Fail, maxLength = 15): string {
  if (typeof value !== 'string' || value.length === 0) throw fail('must be a non-empty interface name');
  if (value.length > maxLength) throw fail(`must be at most ${maxLength} characters`);
  if (value === '.' || value === '..') throw fail('must not be "." or ".."');
  if (!/^[\x21-\x7e]+$/.test(value) || /[/:]/.test(value)) {
    throw fail("must be printable ASCII without '/', ':' or whitespace");
  }
  return value;
}

/** An engine object ID (networks and endpoints are 64 hex digits; tests may use shorter names). */
export function parseObjectId(value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(value)) {
    throw fail('must be 1..128 characters of [A-Za-z0-9_.-]');
  }
  return value;
}

/** A plain JSON object (not null, not an array), or undefined for null/undefined. */
export function asRecord(value: unknown, fail: Fail): Record<string, unknown> | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw fail('must be a JSON object');
  return value as Record<string, unknown>;
}

/** Parse body field `name` with `parse`; a failure names the field and its value. */
export function bodyField<T>(body: Record<string, unknown>, name: string, parse: (value: unknown, fail: Fail) => T): T {
  const value = body[name];
  return parse(value, (why) => badField(name, value, why));
}

/** Like bodyField, but absent, null and "" give undefined. */
export function optionalField<T>(
  body: Record<string, unknown>,
  name: string,
  parse: (value: unknown, fail: Fail) => T,
): T | undefined {
  const value = body[name];
  if (value === undefined || value === null || value === '') return undefined;
  return parse(value, (why) => badField(name, value, why));
}
