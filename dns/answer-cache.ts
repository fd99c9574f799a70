// Encoded answers keyed by the query's wire question (name case-folded, type, class) and what else
// shapes the reply bytes: scope, size cap, RD/CD, EDNS/DO. A hit costs one pass over the question,
// one Map probe and a copy with the client's ID and name case patched in: no strings, no objects
// but the reply. Dropped whole whenever the record index changes (its generation), never stale.
import { CLASSIC_UDP_SIZE, F, MAX_MESSAGE, OUR_UDP_SIZE, T } from './constants.js';

/** One cached question; equal fields and bytes ⇒ byte-equal replies (ID and name case aside). */
interface Entry {
  /** The question as received, name bytes case-folded (type and class as is). */
  question: Buffer;
  scope: number;
  max: number;
  /** RD/CD flags | EDNS tag << 16 (0 none, 1 EDNS, 2 EDNS+DO). */
  bits: number;
  /** Round-robin variants of the reply (index = rotation % length). */
  variants: (Buffer | undefined)[];
  /** No reply of ours: the chain forwarded this question (upstream answers are not kept). */
  forward: boolean;
  next: Entry | undefined;
}

export interface AnswerCacheOptions {
  /** Largest UDP reply whatever the client offers (default 1232). */
  maxUdpSize?: number;
  /** Entries kept (default 50,000; all dropped past it). */
  maxEntries?: number;
}

const fold = (b: number) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);

/**
 * The cache. `shape()` reads a query's header, question and OPT without allocating; its results
 * stay in the instance fields until the next call (one query at a time: Node's event loop).
 */
export class AnswerCache {
  /** From the last shape(): end of the question section. */
  qEnd = 0;
  /** From the last shape(): the reply size cap. */
  max = 0;
  /** From the last shape(): RD/CD | EDNS tag << 16. */
  bits = 0;
  /** From the last shape(): hash of the question bytes (scope not mixed in). */
  hash = 0;
  private readonly table = new Map<number, Entry>();
  private readonly scopeIds = new Map<string, number>();
  private size = 0;
  private gen = -1;

  constructor(
    private readonly index: { readonly generation: number },
    private readonly opts: AnswerCacheOptions = {},
  ) {}

  /**
   * True for a plain query: QR clear, opcode QUERY, one question of plain labels (no pointers),
   * no answer/authority records, nothing or one OPT (root owner, version 0) after it, nothing else.
   */
  shape(raw: Buffer, tcp: boolean): boolean {
    const len = raw.length;
    if (len < 17 || (raw[2]! & 0xf8) !== 0 || raw[4] !== 0 || raw[5] !== 1 || (raw[6]! | raw[7]! | raw[8]! | raw[9]!) !== 0) return false;
    let h = 0x811c9dc5;
    let o = 12;
    for (let l = raw[o]!; l !== 0; l = raw[o]!) {
      if (l > 63 || o + l + 1 >= len) return false;
      h = Math.imul(h ^ l, 0x01000193);
      for (let i = o + 1, e = o + l + 1; i < e; i++) h = Math.imul(h ^ fold(raw[i]!), 0x01000193);
      o += l + 1;
    }
    if (o - 12 > 254) return false;
    const qEnd = o + 5;
    if (qEnd > len) return false;
    for (let i = o + 1; i < qEnd; i++) h = Math.imul(h ^ raw[i]!, 0x01000193);
    let edns = 0;
    let max = CLASSIC_UDP_SIZE;
    if (raw[10] === 0 && raw[11] === 0) {
      if (qEnd !== len) return false;
    } else {
      // One OPT: root owner, type 41, version 0, its options (ignored) ending the message.
      if (raw[10] !== 0 || raw[11] !== 1 || qEnd + 11 > len || raw[qEnd] !== 0 || raw[qEnd + 1] !== 0 || raw[qEnd + 2] !== T.OPT) return false;
      if (raw[qEnd + 6] !== 0 || len !== qEnd + 11 + raw.readUInt16BE(qEnd + 9)) return false;
      max = Math.min(Math.max(CLASSIC_UDP_SIZE, raw.readUInt16BE(qEnd + 3)), this.opts.maxUdpSize ?? OUR_UDP_SIZE);
      edns = raw[qEnd + 7]! & 0x80 ? 2 : 1;
    }
    this.qEnd = qEnd;
    this.max = tcp ? MAX_MESSAGE : max;
    this.bits = (((raw[2]! << 8) | raw[3]!) & (F.RD | F.CD)) | (edns << 16);
    this.hash = h;
    return true;
  }

  /** Small stable number for a scope key (valid until the index changes). */
  scopeId(key: string): number {
    this.sync();
    let id = this.scopeIds.get(key);
    if (id === undefined) this.scopeIds.set(key, (id = this.scopeIds.size + 1));
    return id;
  }

  /** After shape(raw): the cached reply for this scope, as a new buffer with raw's ID and name case. */
  get(raw: Buffer, scope: number, rotation: number): Buffer | undefined {
    if (!this.sync()) return undefined;
    const e = this.find(raw, scope);
    if (!e || e.forward) return undefined;
    const hit = e.variants[rotation % e.variants.length];
    if (!hit) return undefined;
    const out = Buffer.allocUnsafe(hit.length);
    out.set(hit);
    out[0] = raw[0]!;
    out[1] = raw[1]!;
    for (let i = 12, end = this.qEnd - 4; i < end; i++) out[i] = raw[i]!;
    return out;
  }

  /** After shape(raw): keep `reply` (computed at index generation `gen`) for this scope and rotation. */
  put(raw: Buffer, scope: number, gen: number, rotation: number, period: number, reply: Buffer): void {
    const e = this.entry(raw, scope, gen);
    if (!e) return;
    e.forward = false;
    if (e.variants.length !== period) e.variants = new Array<Buffer | undefined>(period);
    e.variants[rotation % period] = reply;
  }

  /** After shape(raw): whether the chain forwarded this question for this scope (index unchanged since). */
  forwarded(raw: Buffer, scope: number): boolean {
    return this.sync() && this.find(raw, scope)?.forward === true;
  }

  /** After shape(raw): the chain forwarded this question (decided at index generation `gen`). */
  markForwarded(raw: Buffer, scope: number, gen: number): void {
    const e = this.entry(raw, scope, gen);
    if (e && e.variants.length === 0) e.forward = true;
  }

  /** The entry for (raw, scope), made if missing; undefined when the index is not at `gen` any more. */
  private entry(raw: Buffer, scope: number, gen: number): Entry | undefined {
    if (!this.sync() || gen !== this.gen) return undefined;
    let e = this.find(raw, scope);
    if (!e) {
      if (this.size >= (this.opts.maxEntries ?? 50_000)) this.clear(false);
      const question = Buffer.from(raw.subarray(12, this.qEnd));
      for (let i = 0; i < question.length - 4; i++) question[i] = fold(question[i]!);
      const slot = this.slot(scope);
      e = { question, scope, max: this.max, bits: this.bits, variants: [], forward: false, next: this.table.get(slot) };
      this.table.set(slot, e);
      this.size++;
    }
    return e;
  }

  /** Drop everything if the index changed since the last call; false when it did. */
  private sync(): boolean {
    if (this.gen === this.index.generation) return true;
    this.clear(true);
    this.gen = this.index.generation;
    return false;
  }

  /** Scope ids are kept unless the index changed (callers may hold one until then). */
  private clear(scopes: boolean): void {
    this.table.clear();
    if (scopes) this.scopeIds.clear();
    this.size = 0;
  }

  private slot(scope: number): number {
    return (Math.imul(this.hash ^ scope, 0x01000193) ^ this.max ^ this.bits) & 0x3fffffff;
  }

  private find(raw: Buffer, scope: number): Entry | undefined {
    const n = this.qEnd - 12;
    for (let e = this.table.get(this.slot(scope)); e; e = e.next) {
      if (e.scope !== scope || e.max !== this.max || e.bits !== this.bits || e.question.length !== n) continue;
      const q = e.question;
      let i = 0;
      for (; i < n - 4; i++) if (q[i] !== fold(raw[12 + i]!)) break;
      if (i < n - 4) continue;
      for (; i < n; i++) if (q[i] !== raw[12 + i]) break;
      if (i === n) return e;
    }
    return undefined;
  }
}
