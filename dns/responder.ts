// From query bytes to reply bytes: the answer cache first (hot path: no parsing beyond the
// question, copy and patch ID and name case), else checks (FORMERR/NOTIMP/REFUSED/BADVERS), the
// client's scope and the handler chain.
// Never throws: a failing handler gives SERVFAIL. Replies never exceed the client's size limit.
import { clientIp } from './address.js';
import { C, CLASSIC_UDP_SIZE, isUnsupportedMetaType, MAX_MESSAGE, OUR_UDP_SIZE, RCODE, T } from './constants.js';
import { AnswerCache } from './answer-cache.js';
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

/** Answers one query at a time; shared by the UDP and TCP listeners. */
export class Responder {
  private readonly enc = new Encoder();
  private readonly cache: AnswerCache;
  private rotation = 0;
  /** The last client seen by cachedReply() and its scope's cache id (0: not a client). */
  private readonly last = { address: '', local: '', tcp: false, gen: -1, scope: 0 };

  /** Position of the forwarding handler in the chain (0: none, never skip to it). */
  private readonly forwardAt: number;

  constructor(private readonly opts: ResponderOptions) {
    this.cache = new AnswerCache(opts.index, { maxUdpSize: opts.maxUdpSize, maxEntries: opts.cacheEntries });
    this.forwardAt = Math.max(0, opts.handlers.findIndex((h) => h.name === 'forward'));
  }

  /** The reply to send (undefined: send nothing), synchronously when it can. */
  respond(raw: Buffer, client: Client): Result | Promise<Result> {
    return this.cachedReply(raw, client.address, client.local, client.tcp) ?? this.respondUncached(raw, client);
  }

  /**
   * The hot path: the cached reply to a plain query (see AnswerCache.shape), or undefined (then
   * call respondUncached). Allocates nothing but the reply; the client's scope is remembered
   * for the next query from the same address.
   */
  cachedReply(raw: Buffer, address: string, local: string, tcp: boolean): Buffer | undefined {
    if (!this.cache.shape(raw, tcp)) return undefined;
    const last = this.last;
    const gen = this.opts.index.generation;
    if (address !== last.address || local !== last.local || tcp !== last.tcp || gen !== last.gen) {
      const scope = this.opts.scopes.resolve(clientIp(address), local);
      last.scope = scope ? this.cache.scopeId(scope.key) : 0;
      last.address = address;
      last.local = local;
      last.tcp = tcp;
      last.gen = gen;
    }
    if (last.scope === 0) return undefined;
    // The rotation advances only on a hit: a miss leaves it to the full path.
    const hit = this.cache.get(raw, last.scope, this.rotation & 0x3fffffff);
    if (hit) this.rotation++;
    return hit;
  }

  /** The full path: parse, check, run the handler chain (and fill the cache). */
  respondUncached(raw: Buffer, client: Client): Result | Promise<Result> {
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
    const rotation = this.rotation++ & 0x3fffffff;
    const req: Request = { raw, query: q, question, scope, tcp: client.tcp, maxSize: max, rotation };
    const gen = this.opts.index.generation;
    // A question forwarded before (index unchanged) skips the backends' lookups.
    const skip = this.forwardAt > 0 && this.cache.shape(raw, client.tcp) && this.cache.max === max && this.cache.forwarded(raw, this.cache.scopeId(scope.key));
    const outcome = this.run(req, skip ? this.forwardAt : 0);
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.finish(req, o, gen),
        (err: Error) => {
          this.opts.log?.('dns: handler failed', { error: err.stack });
          return this.code(q, client, RCODE.SERVFAIL, true);
        },
      );
    }
    return this.finish(req, outcome, gen);
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

  private finish(req: Request, o: Outcome, gen: number): Buffer {
    const q = req.query;
    const max = req.maxSize;
    if (o.kind === 'relay') {
      if (gen === this.opts.index.generation && this.cache.shape(req.raw, req.tcp) && this.cache.max === max) {
        this.cache.markForwarded(req.raw, this.cache.scopeId(req.scope.key), gen);
      }
      if (o.bytes.length > max) {
        const tc = { ...codeReply(o.bytes[3]! & 0xf, true), truncated: true };
        return this.enc.encode(this.ctx(q, true), tc, max);
      }
      // The upstream's message is ours alone (a received datagram or a copy): patch it in place.
      o.bytes.writeUInt16BE(q.id, 0);
      return o.bytes;
    }
    const out = this.enc.encode(this.ctx(q, true), o.reply, max);
    // Only answers computed from the index as it still is, for queries the hot path can key.
    if (o.cacheable && gen === this.opts.index.generation && this.cache.shape(req.raw, req.tcp) && this.cache.max === max) {
      this.cache.put(req.raw, this.cache.scopeId(req.scope.key), gen, req.rotation, o.period, out);
    }
    return out;
  }
}
