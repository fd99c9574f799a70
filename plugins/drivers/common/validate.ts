// Option and input checks shared by the drivers' config parsers: ids, booleans and integers in
// the spellings front ends send (Docker `-o` strings, CNI JSON values), name lists, exposed ports.
// Each failure is an 'invalid-config' DriverError naming the key and the value.
import { invalidConfig } from './errors.js';
import type { ExposedPortRecord, Protocol } from './records.js';

// Go's strconv.ParseBool spellings (what Docker's own drivers accept), plus JSON booleans.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A boolean from a JSON boolean or a ParseBool spelling. */
export function parseBool(key: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && TRUE.has(v)) return true;
  if (typeof v === 'string' && FALSE.has(v)) return false;
  throw invalidConfig(key, v, 'expected a boolean (true/false)');
}

/** An integer in [min, max] from a JSON number or a decimal string. */
export function parseIntIn(key: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw invalidConfig(key, v, 'expected an integer');
  if (n < min || n > max) throw invalidConfig(key, v, `must be between ${min} and ${max}`);
  return n;
}

/** An id (network, endpoint, container): 1–255 characters without control characters. */
export function checkId(key: string, v: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof v !== 'string' || v.length === 0 || v.length > 255 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw invalidConfig(key, v, 'expected 1–255 printable characters');
  }
  return v;
}

/** An optional human name (up to 255 characters). */
export function checkName(key: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 255) throw invalidConfig(key, v, 'expected a string of up to 255 characters');
  return v;
}

/** A list of names (DNS names, aliases) of 1–255 characters each; undefined = []. */
export function nameList(key: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 255)) {
    throw invalidConfig(key, v, 'expected a list of names of 1–255 characters');
  }
  return [...(v as string[])];
}

const PROTOS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];

/** Exposed ports `{proto, port}`; undefined = []. */
export function exposedPorts(key: string, v: unknown): ExposedPortRecord[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidConfig(key, v, 'expected a list of {proto, port}');
  return v.map((p, i) => {
    const o = (typeof p === 'object' && p !== null ? p : {}) as { proto?: unknown; port?: unknown };
    if (!PROTOS.includes(o.proto as Protocol)) throw invalidConfig(`${key}[${i}].proto`, o.proto, 'expected tcp, udp or sctp');
    return { proto: o.proto as Protocol, port: parseIntIn(`${key}[${i}].port`, o.port, 1, 65535) };
  });
}

/** Driver options: an object of string/number/boolean values; keys not in `known` are logged and dropped. */
export function knownOptions(
  raw: unknown,
  known: readonly string[],
  onUnknown: (key: string, value: unknown) => void,
): Record<string, string | number | boolean> {
  const given = raw ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalidConfig('options', raw, 'expected an object');
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(given)) {
    if (!known.includes(k)) {
      onUnknown(k, v);
      continue;
    }
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw invalidConfig(k, v, 'expected a string, number or boolean');
    out[k] = v;
  }
  return out;
}
