// Allocation inside one pool for one host: round-robin through the host's own blocks from
// the last allocation (like host-local), claim a new block when they are full, borrow from
// other hosts' blocks when no block is left. The in-memory view is only a cache: every
// address and block is taken by one compare-and-swap, retried unchanged after a store
// failure, so a write applied twice is recognised by its request id and never duplicated.
import { randomBytes, randomUUID } from 'node:crypto';
import { keys, lastSegment } from '../store/keys.js';
import type { KeyValue, Op, Store } from '../store/types.js';
import { TxnBatcher } from './batcher.js';
import { BlockState } from './block-state.js';
import { formatAddress, parseAddress, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';
import { type PoolRecord, type PoolView, blockIndex, blockSpan, compilePool, handoutCount } from './pool.js';
import { contention } from './pools.js';
import { type AddressRecord, type AllocationKind, type BlockRecord, type OwnerRecord, absent, created, decode, unchanged } from './records.js';
import { type RetryPolicy, retryStore } from './retry.js';

export interface AllocatorContext {
  store: Store;
  hostId: string;
  now: () => string;
  retry: RetryPolicy;
}

/** Outcome of one compare-and-swap on an address. */
export type CommitResult =
  | { status: 'ok'; rec: AddressRecord }
  /** Someone else holds the address (their record). */
  | { status: 'held'; rec: AddressRecord }
  /** The owner already holds an address in this pool (that record). */
  | { status: 'owner'; rec: AddressRecord }
  | { status: 'retry' };

/** The pool was deleted or re-created under us: drop this allocator and start again. */
export class PoolChanged extends Error {}

const MAX_TRIES = 64;
const CURSOR_EVERY_MS = 100;

/** One pool's allocator for one host (one per Ipam instance and pool). */
export class PoolAllocator {
  readonly view: PoolView;
  private readonly blocks = new Map<bigint, BlockState>();
  private own: bigint[] = [];
  /** Own blocks this instance claimed itself: preferred, so processes of one host rarely collide. */
  private readonly mine = new Set<bigint>();
  private cursor: bigint | undefined;
  private ready: Promise<void> | undefined;
  private readonly phases = new Map<string, Promise<unknown>>();
  private readonly batcher: TxnBatcher;
  private cursorSavedAt = -Infinity;

  constructor(
    private readonly ctx: AllocatorContext,
    rec: PoolRecord,
    readonly createRevision: number,
  ) {
    this.view = compilePool(rec);
    this.batcher = new TxnBatcher(ctx.store, created(keys.ipamPool(rec.id), createRevision), ctx.retry);
  }

  get poolId(): string {
    return this.view.rec.id;
  }

  /** The next free address (for owner, when given). */
  async next(owner: string | null, kind: AllocationKind): Promise<AddressRecord> {
    await this.init();
    let spread = false;
    for (let i = 0; i < MAX_TRIES; i++) {
      const v = (await this.pickOwn(spread)) ?? (await this.pickAfterGrow());
      if (v === undefined) throw this.exhausted();
      const r = await this.commit(v, owner, kind, true);
      if (r.status === 'ok' || r.status === 'owner') return r.rec;
      // Lost a race: other processes of this host walk the same order, so jump to a random
      // free spot instead of following them address by address; and when the winner was
      // another process of this host, take a block of our own (processes then stop colliding).
      spread = true;
      if (r.status === 'held' && r.rec.host === this.ctx.hostId && this.mine.size === 0) {
        await this.phase('claim-own', () => this.claimBlock(true));
      }
    }
    throw contention(`allocating in pool ${this.poolId}`);
  }

  /** One specific address; the caller decides what 'held' and 'owner' mean for its request. */
  async take(v: bigint, owner: string | null, kind: AllocationKind): Promise<Exclude<CommitResult, { status: 'retry' }>> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const b = this.blocks.get(blockIndex(this.view, v));
      if (b && !b.state(v)) b.set(v, 'pending');
      const r = await this.commit(v, owner, kind, false);
      if (r.status !== 'retry') return r;
    }
    throw contention(`allocating ${formatAddress(this.view.cidr.family, v)} in pool ${this.poolId}`);
  }

  /** Forget a released address (it becomes a candidate again, after the cursor wraps). */
  forget(v: bigint): void {
    this.blocks.get(blockIndex(this.view, v))?.clear(v);
  }

  /** The block key segment holding value. */
  blockOf(v: bigint): string {
    return this.block(blockIndex(this.view, v)).name;
  }

  private exhausted(): IpamError {
    return new IpamError('pool-exhausted', `pool ${this.poolId} is exhausted: all ${handoutCount(this.view)} assignable addresses are allocated`);
  }

  private block(index: bigint): BlockState {
    let b = this.blocks.get(index);
    if (!b) this.blocks.set(index, (b = new BlockState(this.view, index)));
    return b;
  }

  private get store(): Store {
    return this.ctx.store;
  }

  private read<T>(fn: () => Promise<T>): Promise<T> {
    return retryStore(fn, this.ctx.retry);
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      const [cur, list] = await this.read(() => Promise.all([this.store.get(keys.ipamCursor(this.poolId, this.ctx.hostId)), this.store.range(keys.ipamBlocks(this.poolId))]));
      if (cur) {
        try {
          const a = parseAddress(decode<{ address: string }>(cur).address);
          if (a.family === this.view.cidr.family) this.cursor = a.value;
        } catch {
          // An unreadable cursor only costs round-robin order.
        }
      }
      this.applyBlockList(list.kvs);
    })().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private applyBlockList(kvs: KeyValue[]): void {
    const seen = new Set<bigint>();
    for (const kv of kvs) {
      const idx = blockIndex(this.view, parseCidr(lastSegment(kv.key)).base);
      this.block(idx).host = decode<BlockRecord>(kv).host;
      seen.add(idx);
    }
    for (const [idx, b] of this.blocks) if (!seen.has(idx)) b.host = undefined;
    this.own = [...this.blocks.values()].filter((b) => b.host === this.ctx.hostId).map((b) => b.index).sort(cmp);
    for (const idx of this.mine) if (this.blocks.get(idx)?.host !== this.ctx.hostId) this.mine.delete(idx);
  }

  /** The blocks "next free" walks: those this instance claimed, or (when none) all of this host's. */
  private preferred(all: boolean): bigint[] {
    return all || this.mine.size === 0 ? this.own : this.own.filter((i) => this.mine.has(i));
  }

  private async load(b: BlockState): Promise<void> {
    b.loading ??= (async () => {
      const r = await this.read(() => this.store.range(keys.ipamBlockAddresses(this.poolId, b.name)));
      b.replaceTaken(r.kvs.map((kv) => parseAddress(lastSegment(kv.key)).value));
    })().finally(() => {
      b.loading = undefined;
    });
    return b.loading;
  }

  /** Blocks in round-robin order: after the cursor to the end, the rest, then up to the cursor. */
  private ownOrder(own: bigint[], c: bigint | undefined): { idx: bigint; from: bigint; to: bigint }[] {
    const max = (1n << 128n) - 1n;
    const cIdx = c !== undefined && c >= this.view.cidr.base ? blockIndex(this.view, c) : -1n;
    let p = own.findIndex((i) => i >= cIdx);
    if (p < 0) p = 0;
    const rot = [...own.slice(p), ...own.slice(0, p)].map((idx) => ({ idx, from: 0n, to: max }));
    if (c !== undefined && rot[0]?.idx === cIdx) {
      rot[0] = { idx: cIdx, from: c + 1n, to: max };
      rot.push({ idx: cIdx, from: 0n, to: c });
    }
    return rot;
  }

  /** A random point inside a random own block that has room (undefined when none is known). */
  private randomPoint(list: bigint[]): bigint | undefined {
    const open = list.map((i) => this.block(i)).filter((b) => b.loaded && b.free > 0n);
    const b = open[Math.floor(Math.random() * open.length)];
    return b && b.cidr.base + randomBig(1n << BigInt((b.cidr.family === 4 ? 32 : 128) - b.cidr.prefix));
  }

  private async pickOwn(spread = false, all = false): Promise<bigint | undefined> {
    const list = this.preferred(all);
    for (const seg of this.ownOrder(list, spread ? (this.randomPoint(list) ?? this.cursor) : this.cursor)) {
      const b = this.block(seg.idx);
      if (!b.loaded) await this.load(b);
      if (b.free <= 0n) continue;
      const v = b.scan(seg.from, seg.to);
      if (v !== undefined) {
        b.set(v, 'pending');
        return v;
      }
    }
    return undefined;
  }

  private phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let p = this.phases.get(name) as Promise<T> | undefined;
    if (!p) {
      p = fn().finally(() => this.phases.delete(name));
      this.phases.set(name, p);
    }
    return p;
  }

  private async pickAfterGrow(): Promise<bigint | undefined> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const grew = await this.phase('claim', () => this.claimBlock());
      const v = await this.pickOwn();
      if (v !== undefined) return v;
      if (!grew) break;
    }
    // No block left to claim: this host's other blocks, then read the whole pool once (shared
    // by concurrent callers) and borrow from other hosts.
    const v = await this.pickOwn(false, true);
    if (v !== undefined) return v;
    await this.phase('reload', () => this.reloadAll());
    return (await this.pickOwn(false, true)) ?? this.pickBorrow();
  }

  /** True when this host now has more blocks (claimed, or found claimed by a sibling process). */
  private async claimBlock(force = false): Promise<boolean> {
    const list = await this.read(() => this.store.range(keys.ipamBlocks(this.poolId)));
    const before = new Set(this.own);
    this.applyBlockList(list.kvs);
    // A fresh instance (a CNI exec) first uses blocks other processes of this host claimed.
    if (!force && this.mine.size === 0 && this.own.some((i) => !before.has(i))) return true;
    const span = blockSpan(this.view);
    const count = span.last - span.first + 1n;
    // The lowest free block first (a lone host hands out addresses from the start of the
    // pool, as users expect); after losing a race, a random one, so racing hosts spread out.
    let start = 0n;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const b = this.firstUnclaimed(span.first, count, start);
      if (!b) return false;
      if (await this.claim(b)) return true;
      start = randomBig(count);
    }
    return false;
  }

  private firstUnclaimed(first: bigint, count: bigint, start: bigint): BlockState | undefined {
    // Skipped blocks are known ones (claimed, or seen full) or hold only gateway/reserved
    // addresses, so an unclaimed block is found within this many steps when one exists.
    const limit = BigInt(this.blocks.size + this.view.reserved.size + 2);
    for (let n = 0n; n < count && n <= limit; n++) {
      const b = this.block(first + ((start + n) % count));
      if (b.host === undefined && b.free > 0n) return b;
    }
    return undefined;
  }

  private async claim(b: BlockState): Promise<boolean> {
    const key = keys.ipamBlock(this.poolId, b.name);
    const rec: BlockRecord = { host: this.ctx.hostId, time: this.ctx.now() };
    const r = await this.read(() =>
      this.store.txn([created(keys.ipamPool(this.poolId), this.createRevision), absent(key)], [{ type: 'put', key, value: JSON.stringify(rec) }]),
    );
    if (!r.succeeded) {
      const kv = await this.read(() => this.store.get(key));
      if (!kv) {
        await this.checkPool();
        return false;
      }
      b.host = decode<BlockRecord>(kv).host;
    } else {
      b.host = this.ctx.hostId;
      this.mine.add(b.index);
    }
    if (b.host !== this.ctx.hostId) return false;
    if (!this.own.includes(b.index)) this.own = [...this.own, b.index].sort(cmp);
    return true;
  }

  private async reloadAll(): Promise<void> {
    const [list, addrs] = await this.read(() => Promise.all([this.store.range(keys.ipamBlocks(this.poolId)), this.store.range(keys.ipamAddresses(this.poolId))]));
    this.applyBlockList(list.kvs);
    const taken = new Map<bigint, bigint[]>();
    for (const kv of addrs.kvs) {
      const v = parseAddress(lastSegment(kv.key)).value;
      const idx = blockIndex(this.view, v);
      taken.set(idx, [...(taken.get(idx) ?? []), v]);
    }
    for (const idx of taken.keys()) this.block(idx);
    for (const [idx, b] of this.blocks) b.replaceTaken(taken.get(idx) ?? []);
  }

  private pickBorrow(): bigint | undefined {
    const others = [...this.blocks.values()].filter((b) => b.host !== this.ctx.hostId && b.loaded && b.free > 0n);
    const start = Math.floor(Math.random() * others.length);
    for (let i = 0; i < others.length; i++) {
      const b = others[(start + i) % others.length]!;
      const v = b.scan(b.cidr.base, (1n << 128n) - 1n);
      if (v !== undefined) {
        b.set(v, 'pending');
        return v;
      }
    }
    return undefined;
  }

  private async checkPool(): Promise<void> {
    const kv = await this.read(() => this.store.get(keys.ipamPool(this.poolId)));
    if (!kv || kv.createRevision !== this.createRevision) throw new PoolChanged(this.poolId);
  }

  /** One CAS for value v (already marked pending); diagnose a failed compare. */
  private async commit(v: bigint, owner: string | null, kind: AllocationKind, moveCursor: boolean): Promise<CommitResult> {
    const b = this.blocks.get(blockIndex(this.view, v));
    const address = formatAddress(this.view.cidr.family, v);
    const blockName = this.blockOf(v);
    const rec: AddressRecord = { address, pool: this.poolId, block: blockName, owner, host: this.ctx.hostId, time: this.ctx.now(), kind, req: randomUUID() };
    const addrKey = keys.ipamBlockAddress(this.poolId, blockName, address);
    const ownerKey = owner === null ? undefined : keys.ipamOwner(owner, this.poolId);
    const compares = [absent(addrKey)];
    const ops: Op[] = [{ type: 'put', key: addrKey, value: JSON.stringify(rec) }];
    if (ownerKey) {
      compares.push(absent(ownerKey));
      ops.push({ type: 'put', key: ownerKey, value: JSON.stringify({ address, block: blockName, req: rec.req } satisfies OwnerRecord) });
    }
    // The stored cursor only serves instances started later (CNI execs, a restarted daemon):
    // a long-lived instance persists its position at most every CURSOR_EVERY_MS.
    const persist = moveCursor && performance.now() - this.cursorSavedAt >= CURSOR_EVERY_MS;
    if (persist) this.cursorSavedAt = performance.now();
    const hint = persist ? { type: 'put' as const, key: keys.ipamCursor(this.poolId, this.ctx.hostId), value: JSON.stringify({ address }) } : undefined;
    let result: CommitResult = { status: 'retry' };
    try {
      // The same CAS (same req id) is re-sent after a store failure: if an earlier try was
      // applied, the compare fails and the diagnosis below recognises our own record.
      const applied = await this.batcher.submit({ compares, ops, hint });
      result = applied ? { status: 'ok', rec } : await this.diagnose(addrKey, ownerKey, owner, rec.req);
      return result;
    } finally {
      if (result.status === 'ok' || result.status === 'held' || (result.status === 'owner' && result.rec.address === address)) {
        b?.set(v, 'taken');
        if (result.status === 'ok' && moveCursor) this.cursor = v;
      } else if (b?.state(v) === 'pending') b.clear(v);
    }
  }

  private async diagnose(addrKey: string, ownerKey: string | undefined, owner: string | null, req: string): Promise<CommitResult> {
    const cur = await this.read(() => this.store.get(addrKey));
    if (cur) {
      const c = decode<AddressRecord>(cur);
      return { status: c.req === req ? 'ok' : owner !== null && c.owner === owner ? 'owner' : 'held', rec: c };
    }
    if (ownerKey) {
      const o = await this.read(() => this.store.get(ownerKey));
      if (o) {
        const or = decode<OwnerRecord>(o);
        const held = await this.read(() => this.store.get(keys.ipamBlockAddress(this.poolId, or.block, or.address)));
        const hr = held && decode<AddressRecord>(held);
        if (hr && hr.req === or.req) return { status: 'owner', rec: hr };
        // A stale index entry (its address was freed or the pool re-created): drop it, retry.
        await this.read(() => this.store.txn([unchanged(ownerKey, o.modRevision)], [{ type: 'delete', key: ownerKey }]));
        return { status: 'retry' };
      }
    }
    await this.checkPool();
    return { status: 'retry' };
  }
}

function randomBig(below: bigint): bigint {
  return BigInt('0x' + randomBytes(16).toString('hex')) % below;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
