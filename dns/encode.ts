// Writing responses: header, the echoed question, records with name compression, OPT, and
// truncation to the client's size (TC set, answers dropped) so no reply exceeds what the query allows.
import { F, HEADER_SIZE, MAX_MESSAGE, OUR_UDP_SIZE, T } from './constants.js';
import type { Question } from './message.js';

interface RRBase {
  /** Owner name key (plain labels, see name.ts). */
  name: string;
  ttl: number;
}

/** A record to write. Names are keys (lowercase, no trailing dot). */
export type RR =
  | (RRBase & { type: typeof T.A | typeof T.AAAA; addr: Buffer })
  | (RRBase & { type: typeof T.PTR | typeof T.CNAME | typeof T.NS; target: string })
  | (RRBase & { type: typeof T.SRV; priority: number; weight: number; port: number; target: string })
  | (RRBase & { type: typeof T.TXT; txt: string[] })
  | (RRBase & {
      type: typeof T.SOA;
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    });

/** Everything a response carries. `rcode` may exceed 15 (the high bits go into OPT). */
export interface Reply {
  rcode: number;
  authoritative: boolean;
  /** Recursion available to this client. */
  recursion: boolean;
  answers: RR[];
  authority: RR[];
  additional: RR[];
  /** Send with TC set and no records (e.g. an upstream answer too big for the client). */
  truncated?: boolean;
}

/** What the encoder needs from the query. */
export interface ReplyContext {
  id: number;
  /** The query's flag word (opcode, RD and CD are echoed). */
  flags: number;
  question?: Question;
  /** Present when the query carried OPT: the reply carries one too. */
  edns?: { udpSize: number; dnssecOk: boolean };
}

const OPT_SIZE = 11;
/** Room after the limit for one record to overshoot before it is rolled back. */
const SLACK = 70_000;

/** Encodes replies into one reused scratch buffer; each result is a fresh copy. */
export class Encoder {
  private readonly buf = Buffer.allocUnsafe(MAX_MESSAGE + SLACK);
  private off = 0;
  private dict = new Map<string, number>();

  /**
   * Encode within maxSize bytes. When the answers or authority do not fit, the reply has TC set
   * and the answers that fit (RFC 2181 9 allows a partial RRset): resolvers retry over TCP, and
   * clients that cannot (busybox nslookup) still get some addresses.
   */
  encode(ctx: ReplyContext, reply: Reply, maxSize: number): Buffer {
    const limit = Math.min(maxSize, MAX_MESSAGE) - (ctx.edns ? OPT_SIZE : 0);
    const counts = this.start(ctx, reply, false);
    const body = !reply.truncated && this.section(reply.answers, limit) && this.section(reply.authority, limit);
    if (!body) {
      this.start(ctx, reply, true);
      let n = 0;
      if (!reply.truncated) while (n < reply.answers.length && this.record(reply.answers[n]!, limit)) n++;
      return this.finish(ctx, reply, [n, 0, 0]);
    }
    counts[0] = reply.answers.length;
    counts[1] = reply.authority.length;
    // Additional records are optional: stop at the first that does not fit, no TC (RFC 2181 9).
    for (const rr of reply.additional) {
      if (!this.record(rr, limit)) break;
      counts[2]++;
    }
    return this.finish(ctx, reply, counts);
  }

  private start(ctx: ReplyContext, reply: Reply, truncated: boolean): number[] {
    const b = this.buf;
    let flags = F.QR | (ctx.flags & (0x7800 | F.RD | F.CD)) | (reply.rcode & 0xf);
    if (reply.authoritative) flags |= F.AA;
    if (reply.recursion) flags |= F.RA;
    if (truncated) flags |= F.TC;
    b.writeUInt16BE(ctx.id, 0);
    b.writeUInt16BE(flags, 2);
    b.fill(0, 4, HEADER_SIZE);
    this.off = HEADER_SIZE;
    this.dict.clear();
    const q = ctx.question;
    if (q) {
      b.writeUInt16BE(1, 4);
      this.registerQuestion(q);
      this.off += q.wire.copy(b, this.off);
      b.writeUInt16BE(q.type, this.off);
      b.writeUInt16BE(q.cls, this.off + 2);
      this.off += 4;
    }
    return [0, 0, 0];
  }

  /** Make the question's name and its suffixes compression targets. */
  private registerQuestion(q: Question): void {
    if (q.name === '' || q.name.includes('\\')) return;
    let pos = HEADER_SIZE;
    let rest = q.name;
    for (;;) {
      this.dict.set(rest, pos);
      pos += q.wire[pos - HEADER_SIZE]! + 1;
      const dot = rest.indexOf('.');
      if (dot < 0) return;
      rest = rest.slice(dot + 1);
    }
  }

  private finish(ctx: ReplyContext, reply: Reply, counts: number[]): Buffer {
    const b = this.buf;
    b.writeUInt16BE(counts[0]!, 6);
    b.writeUInt16BE(counts[1]!, 8);
    let ar = counts[2]!;
    if (ctx.edns) {
      // OPT: root owner, our payload size, extended rcode high bits, version 0, DO echoed.
      b[this.off] = 0;
      b.writeUInt16BE(T.OPT, this.off + 1);
      b.writeUInt16BE(OUR_UDP_SIZE, this.off + 3);
      b[this.off + 5] = (reply.rcode >> 4) & 0xff;
      b[this.off + 6] = 0;
      b.writeUInt16BE(ctx.edns.dnssecOk ? 0x8000 : 0, this.off + 7);
      b.writeUInt16BE(0, this.off + 9);
      this.off += OPT_SIZE;
      ar++;
    }
    b.writeUInt16BE(ar, 10);
    const out = Buffer.allocUnsafe(this.off);
    b.copy(out, 0, 0, this.off);
    return out;
  }

  private section(rrs: RR[], limit: number): boolean {
    for (const rr of rrs) if (!this.record(rr, limit)) return false;
    return true;
  }

  /** Append one record; false (and nothing written) when it would pass the limit. */
  private record(rr: RR, limit: number): boolean {
    const b = this.buf;
    const startOff = this.off;
    const dictSize = this.dict.size;
    this.name(rr.name, true);
    b.writeUInt16BE(rr.type, this.off);
    b.writeUInt16BE(1, this.off + 2);
    b.writeUInt32BE(rr.ttl >>> 0, this.off + 4);
    const lenAt = this.off + 8;
    this.off += 10;
    this.rdata(rr);
    b.writeUInt16BE(this.off - lenAt - 2, lenAt);
    if (this.off <= limit) return true;
    this.off = startOff;
    if (this.dict.size !== dictSize) for (const [k, v] of this.dict) if (v >= startOff) this.dict.delete(k);
    return false;
  }

  private rdata(rr: RR): void {
    const b = this.buf;
    switch (rr.type) {
      case T.A:
      case T.AAAA:
        this.off += rr.addr.copy(b, this.off);
        return;
      case T.PTR:
      case T.CNAME:
      case T.NS:
        this.name(rr.target, true);
        return;
      case T.SRV:
        b.writeUInt16BE(rr.priority, this.off);
        b.writeUInt16BE(rr.weight, this.off + 2);
        b.writeUInt16BE(rr.port, this.off + 4);
        this.off += 6;
        // RFC 2782: the target is never compressed (but later names may point into it).
        this.name(rr.target, false);
        return;
      case T.TXT:
        for (const s of rr.txt) {
          const n = Math.min(255, Buffer.byteLength(s, 'latin1'));
          b[this.off] = n;
          this.off += 1 + b.write(s.slice(0, n), this.off + 1, 'latin1');
        }
        if (rr.txt.length === 0) b[this.off++] = 0;
        return;
      case T.SOA:
        this.name(rr.mname, true);
        this.name(rr.rname, true);
        for (const v of [rr.serial, rr.refresh, rr.retry, rr.expire, rr.minimum]) {
          b.writeUInt32BE(v >>> 0, this.off);
          this.off += 4;
        }
        return;
    }
  }

  /** Write a name key, pointing at an earlier copy of its longest known suffix. */
  private name(key: string, compress: boolean): void {
    const b = this.buf;
    let rest = key;
    while (rest.length > 0) {
      if (compress) {
        const ptr = this.dict.get(rest);
        if (ptr !== undefined) {
          b.writeUInt16BE(0xc000 | ptr, this.off);
          this.off += 2;
          return;
        }
      }
      if (this.off < 0x3fff && !this.dict.has(rest)) this.dict.set(rest, this.off);
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      b[this.off] = label.length;
      this.off += 1 + b.write(label, this.off + 1, 'latin1');
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    b[this.off++] = 0;
  }
}

/** An empty reply with a response code (FORMERR, REFUSED, …). */
export function codeReply(rcode: number, recursion = false): Reply {
  return { rcode, authoritative: false, recursion, answers: [], authority: [], additional: [] };
}
