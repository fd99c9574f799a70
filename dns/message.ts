// Reading queries (the server's hot path: header, one question, OPT) and whole messages
// (forwarded answers, tests). Never throws on bad input: malformed data yields a response
// code or undefined.
import { CLASSIC_UDP_SIZE, F, HEADER_SIZE, RCODE, T, type Rcode } from './constants.js';
import { readName } from './name.js';

/** The one question of a query. */
export interface Question {
  /** Lowercase key of the name (see name.ts). */
  name: string;
  /** Uncompressed wire form in the client's case. */
  wire: Buffer;
  type: number;
  cls: number;
}

/** EDNS(0) parameters from an OPT record (RFC 6891). */
export interface Edns {
  /** The requester's UDP payload size, at least 512. */
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

/** A parsed query; `error` is set when it must be answered with that code and nothing else. */
export interface Query {
  id: number;
  /** The header's flag word as received. */
  flags: number;
  opcode: number;
  question?: Question;
  /** Raw question section (name + type + class) as received, for cache keys. */
  questionEnd: number;
  edns?: Edns;
  /** Offset of the OPT record's payload-size field (to clamp it when forwarding). */
  optAt?: number;
  error?: Rcode;
}

/**
 * Parse a query. Undefined means "drop silently": shorter than a header, or a response
 * (QR set; answering those would let anyone make two servers talk forever).
 */
export function parseQuery(buf: Buffer): Query | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const flags = buf.readUInt16BE(2);
  if (flags & F.QR) return undefined;
  const q: Query = { id: buf.readUInt16BE(0), flags, opcode: (flags >> 11) & 0xf, questionEnd: HEADER_SIZE };
  if (q.opcode !== 0) {
    q.error = RCODE.NOTIMP;
    return q;
  }
  const qd = buf.readUInt16BE(4);
  if (qd !== 1) {
    // Zero or several questions: RFC 9619 makes QDCOUNT > 1 a FORMERR, and 0 has nothing to answer.
    q.error = RCODE.FORMERR;
    return q;
  }
  const name = readName(buf, HEADER_SIZE);
  if (!name || name.end + 4 > buf.length) {
    q.error = RCODE.FORMERR;
    return q;
  }
  q.question = { name: name.key, wire: name.wire, type: buf.readUInt16BE(name.end), cls: buf.readUInt16BE(name.end + 2) };
  q.questionEnd = name.end + 4;
  const other = buf.readUInt16BE(6) + buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (other === 0 && ar === 0) return q;
  readOptSection(buf, q, other, ar);
  return q;
}

/** Skip answer/authority records and find the OPT record among the additional ones. */
function readOptSection(buf: Buffer, q: Query, skip: number, ar: number): void {
  let off = q.questionEnd;
  for (let i = 0; i < skip + ar; i++) {
    const name = readName(buf, off);
    if (!name || name.end + 10 > buf.length) {
      q.error = RCODE.FORMERR;
      return;
    }
    const type = buf.readUInt16BE(name.end);
    const rdlen = buf.readUInt16BE(name.end + 8);
    const next = name.end + 10 + rdlen;
    if (next > buf.length) {
      q.error = RCODE.FORMERR;
      return;
    }
    if (type === T.OPT) {
      // One OPT, in the additional section, owned by the root (RFC 6891 6.1.1).
      if (i < skip || q.edns || name.key !== '') {
        q.error = RCODE.FORMERR;
        return;
      }
      const ttl = buf.readUInt32BE(name.end + 4);
      q.optAt = name.end + 2;
      q.edns = {
        udpSize: Math.max(CLASSIC_UDP_SIZE, buf.readUInt16BE(name.end + 2)),
        version: (ttl >>> 16) & 0xff,
        dnssecOk: (ttl & 0x8000) !== 0,
      };
    }
    off = next;
  }
  if (q.edns && q.edns.version !== 0 && q.error === undefined) q.error = RCODE.BADVERS;
}

/** One resource record of a decoded message; `data` is decoded for the types we use. */
export interface DecodedRR {
  name: string;
  type: number;
  cls: number;
  ttl: number;
  /** A/AAAA: address text; PTR/CNAME/NS: name key; SRV/SOA: object; TXT: strings; else raw bytes. */
  data: unknown;
}

/** A whole decoded message. */
export interface DecodedMessage {
  id: number;
  flags: number;
  rcode: number;
  questions: { name: string; type: number; cls: number }[];
  answers: DecodedRR[];
  authority: DecodedRR[];
  additional: DecodedRR[];
}

/** Decode a whole message; undefined when any part is malformed. */
export function decodeMessage(buf: Buffer): DecodedMessage | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const flags = buf.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o));
  const msg: DecodedMessage = { id: buf.readUInt16BE(0), flags, rcode: flags & 0xf, questions: [], answers: [], authority: [], additional: [] };
  let off = HEADER_SIZE;
  for (let i = 0; i < counts[0]!; i++) {
    const n = readName(buf, off);
    if (!n || n.end + 4 > buf.length) return undefined;
    msg.questions.push({ name: n.key, type: buf.readUInt16BE(n.end), cls: buf.readUInt16BE(n.end + 2) });
    off = n.end + 4;
  }
  const sections = [msg.answers, msg.authority, msg.additional];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const rr = decodeRR(buf, off);
      if (!rr) return undefined;
      sections[s]!.push(rr.rr);
      off = rr.end;
    }
  }
  const opt = msg.additional.find((r) => r.type === T.OPT);
  if (opt) msg.rcode |= ((opt.ttl >>> 24) & 0xff) << 4;
  return msg;
}

function decodeRR(buf: Buffer, off: number): { rr: DecodedRR; end: number } | undefined {
  const n = readName(buf, off);
  if (!n || n.end + 10 > buf.length) return undefined;
  const type = buf.readUInt16BE(n.end);
  const rdlen = buf.readUInt16BE(n.end + 8);
  const start = n.end + 10;
  const end = start + rdlen;
  if (end > buf.length) return undefined;
  const data = decodeRData(buf, type, start, end);
  if (data === undefined) return undefined;
  return { rr: { name: n.key, type, cls: buf.readUInt16BE(n.end + 2), ttl: buf.readUInt32BE(n.end + 4), data }, end };
}

function decodeRData(buf: Buffer, type: number, start: number, end: number): unknown {
  const len = end - start;
  const nameAt = (o: number) => {
    const n = readName(buf, o);
    return n && n.end <= end ? n : undefined;
  };
  switch (type) {
    case T.A:
      return len === 4 ? [...buf.subarray(start, end)].join('.') : undefined;
    case T.AAAA:
      return len === 16 ? ipv6Text(buf.subarray(start, end)) : undefined;
    case T.PTR:
    case T.CNAME:
    case T.NS: {
      const n = nameAt(start);
      return n && n.end === end ? n.key : undefined;
    }
    case T.SRV: {
      if (len < 7) return undefined;
      const n = nameAt(start + 6);
      if (!n || n.end !== end) return undefined;
      return { priority: buf.readUInt16BE(start), weight: buf.readUInt16BE(start + 2), port: buf.readUInt16BE(start + 4), target: n.key };
    }
    case T.SOA: {
      const m = nameAt(start);
      const r = m && nameAt(m.end);
      if (!m || !r || r.end + 20 !== end) return undefined;
      const u = (i: number) => buf.readUInt32BE(r.end + 4 * i);
      return { mname: m.key, rname: r.key, serial: u(0), refresh: u(1), retry: u(2), expire: u(3), minimum: u(4) };
    }
    case T.TXT: {
      const out: string[] = [];
      for (let o = start; o < end; ) {
        const l = buf[o]!;
        if (o + 1 + l > end) return undefined;
        out.push(buf.toString('latin1', o + 1, o + 1 + l));
        o += 1 + l;
      }
      return out;
    }
    default:
      return Buffer.from(buf.subarray(start, end));
  }
}

/** RFC 5952 text of 16 address bytes (shortest form, lowercase). */
export function ipv6Text(b: Buffer): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** True when reply answers our query: QR set, our ID, one question equal to ours. */
export function replyMatches(reply: Buffer, id: number, q: Question): boolean {
  if (reply.length < HEADER_SIZE || reply.readUInt16BE(0) !== id || !(reply.readUInt16BE(2) & F.QR)) return false;
  if (reply.readUInt16BE(4) !== 1) return false;
  const n = readName(reply, HEADER_SIZE);
  if (!n || n.end + 4 > reply.length) return false;
  return n.key === q.name && reply.readUInt16BE(n.end) === q.type && reply.readUInt16BE(n.end + 2) === q.cls;
}
