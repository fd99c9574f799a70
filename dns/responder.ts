// From query bytes to reply bytes: checks (FORMERR/NOTIMP/REFUSED/BADVERS), the client's scope,
// a cache of encoded answers (fast path: copy, patch the ID), then the handler chain.
// Never throws: a failing handler gives SERVFAIL. Replies never exceed the client's size limit.
import { clientIp } from './address.js';
import { C, CLASSIC_UDP_SIZE, F, isUnsupportedMetaType, MAX_MESSAGE, OUR_UDP_SIZE, RCODE, T } from './constants.js';
import { codeReply, Encoder, type ReplyContext } from './encode.js';
import type { Handler, Outcome, Request } from './handlers.js';
import { parseQuery, type Query } from './message.js';
import type { RecordIndex } from './record-index.js';
import type { ScopeResolver } from './scope.js';
import type { DnsLog } from './store-sync.js';

/** Where a query came from. */
export interface Client {
  /** Source address as the socket reports it. */
  address: string;
  /** The address the query was sent to (the listener's). */
  local: string;
  tcp: boolean;
}

export interface ResponderOptions {
  index: RecordIndex;
  scopes: ScopeResolver;
  handlers: Handler[];
  /** Largest UDP reply, whatever EDNS size the client offers (default 1232). */
  maxUdpSize?: number;
  /** Encoded answers kept (default 50,000; all dropped when the index changes). */
  cacheEntries?: number;
  log?: DnsLog;
}

type Result = Buffer | undefined;

/** Equal keys get byte-equal replies (ID aside): scope, size limit, RD/CD, EDNS/DO, raw question. */
function cacheKey(scope: string, max: number, flags: number, ednsTag: number, raw: Buffer, qEnd: number): string {
  return `${scope}\x01${max}\x01${flags & (F.RD | F.CD)}\x01${ednsTag}\x01${raw.toString('latin1', 12, qEnd)}`;
}

/** Answers one query at a time; shared by the UDP and TCP listeners. */
export class Responder {
  private readonly enc = new Encoder();
  private readonly cache = new Map<string, (Buffer | undefined)[]>();
  private cacheGen = -1;
  private rotation = 0;

  constructor(private readonly opts: ResponderOptions) {}

  /** The reply to send (undefined: send nothing), synchronously when it can. */
  respond(raw: Buffer, client: Client): Result | Promise<Result> {
    const fast = this.fastPath(raw, client);
    if (fast) return fast;
    let q: Query | undefined;
    try {
      q = parseQuery(raw);
      if (!q) return undefined;
      return this.answer(raw, q, client);
    } catch (err) {
      this.opts.log?.('dns: internal error', { error: (err as Error).stack });
      return q ? this.code(q, client, RCODE.SERVFAIL, false) : undefined;
    }
  }

  private maxSize(q: Query, client: Client): number {
    if (client.tcp) return MAX_MESSAGE;
    return q.edns ? Math.min(q.edns.udpSize, this.opts.maxUdpSize ?? OUR_UDP_SIZE) : CLASSIC_UDP_SIZE;
  }

  private ctx(q: Query, withQuestion: boolean): ReplyContext {
    return { id: q.id, flags: q.flags, question: withQuestion ? q.question : undefined, edns: q.edns };
  }

  private code(q: Query, client: Client, rcode: number, withQuestion: boolean, recursion = false): Buffer {
    return this.enc.encode(this.ctx(q, withQuestion), codeReply(rcode, recursion), this.maxSize(q, client));
  }

  private answer(raw: Buffer, q: Query, client: Client): Result | Promise<Result> {
    if (q.error !== undefined) return this.code(q, client, q.error, q.error === RCODE.BADVERS);
    const question = q.question!;
    if (question.type === 0 || question.type === T.OPT) return this.code(q, client, RCODE.FORMERR, true);
    if (isUnsupportedMetaType(question.type)) return this.code(q, client, RCODE.NOTIMP, true);
    if (question.cls !== C.IN && question.cls !== C.ANY) return this.code(q, client, RCODE.REFUSED, true);
    const scope = this.opts.scopes.resolve(clientIp(client.address), client.local);
    if (!scope) return this.code(q, client, RCODE.REFUSED, true);
    const max = this.maxSize(q, client);
    const key = cacheKey(scope.key, max, q.flags, q.edns ? (q.edns.dnssecOk ? 2 : 1) : 0, raw, q.questionEnd);
    const rotation = this.rotation++ & 0x3fffffff;
    const hit = this.cached(key, rotation);
    if (hit) {
      const out = Buffer.allocUnsafe(hit.length);
      hit.copy(out);
      out.writeUInt16BE(q.id, 0);
      return out;
    }
    const req: Request = { raw, query: q, question, scope, tcp: client.tcp, maxSize: max, rotation };
    const outcome = this.run(req, 0);
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.finish(req, o, max, key),
        (err: Error) => {
          this.opts.log?.('dns: handler failed', { error: err.stack });
          return this.code(q, client, RCODE.SERVFAIL, true);
        },
      );
    }
    return this.finish(req, outcome, max, key);
  }

  /**
   * The hot path: a plain query (one question of plain labels, no records or one bare OPT)
   * whose encoded answer is cached. No name is decoded: the cache key is the raw question.
   */
  private fastPath(raw: Buffer, client: Client): Buffer | undefined {
    const len = raw.length;
    // QR clear, opcode 0, exactly one question, no answer/authority records.
    if (len < 17 || (raw[2]! & 0xf8) !== 0 || raw[4] !== 0 || raw[5] !== 1 || (raw[6]! | raw[7]! | raw[8]! | raw[9]!) !== 0) return undefined;
    let o = 12;
    for (let l = raw[o]!; l !== 0; l = raw[o]!) {
      if (l > 63) return undefined;
      o += l + 1;
      if (o >= len) return undefined;
    }
    const qEnd = o + 5;
    let ednsTag = 0;
    let max = CLASSIC_UDP_SIZE;
    if (raw[10] === 0 && raw[11] === 0) {
      if (qEnd !== len) return undefined;
    } else {
      // One OPT: root owner, type 41, version 0, no options.
      if (raw[10] !== 0 || raw[11] !== 1 || len !== qEnd + 11 || raw[qEnd] !== 0 || raw[qEnd + 1] !== 0 || raw[qEnd + 2] !== T.OPT) return undefined;
      if (raw[qEnd + 6] !== 0 || raw[qEnd + 9] !== 0 || raw[qEnd + 10] !== 0) return undefined;
      max = Math.min(Math.max(CLASSIC_UDP_SIZE, raw.readUInt16BE(qEnd + 3)), this.opts.maxUdpSize ?? OUR_UDP_SIZE);
      ednsTag = raw[qEnd + 7]! & 0x80 ? 2 : 1;
    }
    if (client.tcp) max = MAX_MESSAGE;
    const scope = this.opts.scopes.resolve(clientIp(client.address), client.local);
    if (!scope) return undefined;
    // The rotation advances only on a hit: a miss leaves it to the full path.
    const hit = this.cached(cacheKey(scope.key, max, raw.readUInt16BE(2), ednsTag, raw, qEnd), this.rotation & 0x3fffffff);
    if (!hit) return undefined;
    this.rotation++;
    const out = Buffer.allocUnsafe(hit.length);
    hit.copy(out);
    out[0] = raw[0]!;
    out[1] = raw[1]!;
    return out;
  }

  private cached(key: string, rotation: number): Buffer | undefined {
    if (this.cacheGen !== this.opts.index.generation) {
      this.cache.clear();
      this.cacheGen = this.opts.index.generation;
      return undefined;
    }
    const variants = this.cache.get(key);
    return variants?.[rotation % variants.length];
  }

  private run(req: Request, from: number): Outcome | Promise<Outcome> {
    const hs = this.opts.handlers;
    for (let i = from; i < hs.length; i++) {
      const r = hs[i]!.handle(req);
      if (r instanceof Promise) return r.then((o) => o ?? this.run(req, i + 1));
      if (r) return r;
    }
    return { kind: 'reply', reply: codeReply(RCODE.SERVFAIL), cacheable: false, period: 1 };
  }

  private finish(req: Request, o: Outcome, max: number, key: string): Buffer {
    const q = req.query;
    if (o.kind === 'relay') {
      if (o.bytes.length > max) {
        const tc = { ...codeReply(o.bytes[3]! & 0xf, true), truncated: true };
        return this.enc.encode(this.ctx(q, true), tc, max);
      }
      const out = Buffer.from(o.bytes);
      out.writeUInt16BE(q.id, 0);
      return out;
    }
    const out = this.enc.encode(this.ctx(q, true), o.reply, max);
    if (o.cacheable && this.cacheGen === this.opts.index.generation) this.store(key, req.rotation, o.period, out);
    return out;
  }

  private store(key: string, rotation: number, period: number, out: Buffer): void {
    if (this.cache.size >= (this.opts.cacheEntries ?? 50_000)) this.cache.clear();
    let variants = this.cache.get(key);
    if (!variants || variants.length !== period) this.cache.set(key, (variants = new Array<Buffer | undefined>(period)));
    variants[rotation % period] = out;
  }
}
