// Domain names: reading them off the wire (with compression, loop-proof) and the text forms the
// index uses. A name's "key" is lowercase ASCII, dot-separated, without the trailing dot.
import { HEADER_SIZE, MAX_LABEL, MAX_NAME_WIRE } from './constants.js';

/** A name read from a message. */
export interface WireName {
  /** Lowercase text without the trailing dot ("" = root); odd bytes are escaped as \DDD. */
  key: string;
  /** The uncompressed wire form in the sender's case, root label included. */
  wire: Buffer;
  /** Offset just past the name where it started (past the first pointer, if any). */
  end: number;
}

const ROOT = Buffer.from([0]);

/**
 * Read the name at `off`. Returns undefined for anything malformed: reserved label types,
 * a pointer that does not point strictly backwards (this also rules out loops) or points into
 * the header, a name
 * longer than 255 octets, or running off the end of the buffer.
 */
export function readName(buf: Buffer, off: number): WireName | undefined {
  let pos = off;
  let end = -1;
  let wireLen = 0;
  let key = '';
  let compressed = false;
  const parts: Buffer[] = [];
  let lowest = off;
  for (;;) {
    if (pos >= buf.length) return undefined;
    const len = buf[pos]!;
    if (len === 0) {
      wireLen += 1;
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) return undefined;
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      // Strictly backwards (no loops) and never into the 12-byte header.
      if (target >= lowest || target < HEADER_SIZE) return undefined;
      if (!compressed && pos > off) parts.push(buf.subarray(off, pos));
      if (end < 0) end = pos + 2;
      lowest = target;
      pos = target;
      compressed = true;
      continue;
    }
    if (kind !== 0) return undefined;
    const start = pos + 1;
    const stop = start + len;
    if (stop > buf.length) return undefined;
    wireLen += len + 1;
    if (wireLen >= MAX_NAME_WIRE) return undefined;
    key += (key.length === 0 ? '' : '.') + labelKey(buf, start, stop);
    // The wire copy is needed only for compressed names (else it is a view of the input).
    if (compressed) parts.push(buf.subarray(pos, stop));
    pos = stop;
  }
  const wire = compressed ? Buffer.concat([...parts, ROOT]) : buf.subarray(off, end);
  return { key, wire, end };
}

/** Lowercase text of one label; '.', '\\', and bytes outside printable ASCII become \DDD. */
function labelKey(buf: Buffer, start: number, stop: number): string {
  let plain = true;
  let upper = false;
  for (let i = start; i < stop; i++) {
    const b = buf[i]!;
    if (b <= 32 || b >= 127 || b === 46 || b === 92) plain = false;
    else if (b >= 65 && b <= 90) upper = true;
  }
  if (plain) {
    const s = buf.toString('latin1', start, stop);
    return upper ? s.toLowerCase() : s;
  }
  let s = '';
  for (let i = start; i < stop; i++) {
    const b = buf[i]!;
    if (b <= 32 || b >= 127 || b === 46 || b === 92) s += `\\${String(b).padStart(3, '0')}`;
    else s += String.fromCharCode(b >= 65 && b <= 90 ? b + 32 : b);
  }
  return s;
}

const LABEL = /^[a-z0-9_*]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The key of a name given as text (records, configuration): lowercased, trailing dot
 * dropped. Undefined when it cannot be a DNS name we serve: empty labels, a label over 63
 * characters, a name over 253, or characters outside letters, digits, '-', '_' (and '*').
 */
export function nameKey(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  let s = text.trim().toLowerCase();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0 || s.length > 253) return undefined;
  for (const label of s.split('.')) {
    if (label.length > MAX_LABEL || !LABEL.test(label)) return undefined;
  }
  return s;
}

/** The wire form of a name key (plain labels only; see nameKey). */
export function keyToWire(key: string): Buffer {
  if (key === '') return Buffer.from(ROOT);
  const labels = key.split('.');
  const out = Buffer.allocUnsafe(key.length + 2);
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    o += out.write(l, o, 'latin1');
  }
  out[o++] = 0;
  return out.subarray(0, o);
}

/** True when `name` is `zone` or below it (both keys). */
export function isSubdomain(name: string, zone: string): boolean {
  if (zone === '') return true;
  return name === zone || (name.length > zone.length && name.endsWith(zone) && name[name.length - zone.length - 1] === '.');
}
