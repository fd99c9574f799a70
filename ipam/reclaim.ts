// Freeing addresses: by address, by owner, and garbage collection of allocations whose owner
// or host is gone. Each free is a CAS on the record as read, so a re-allocated address is
// never freed by mistake.
import { keys, lastSegment, parseKey } from '../store/keys.js';
import type { KeyValue, Op, Store, Compare } from '../store/types.js';
import { type AddressRecord, type Allocation, type BlockRecord, type OwnerRecord, decode, toAllocation, unchanged } from './records.js';
import { type RetryPolicy, retryStore } from './retry.js';

/** What GC may consider dead. */
export interface GcOptions {
  /**
   * False for an owner that no longer exists (CNI GC's valid attachments; Docker endpoints the
   * engine still has). `allocation` is the record as read: the one freed when this says false.
   */
  isOwnerValid: (owner: string, allocation: Allocation) => boolean | Promise<boolean>;
  /** Hosts whose lease expired: their endpoint allocations and block affinities are freed. */
  deadHosts?: string[];
  /**
   * Also treat as dead every host that holds allocations or blocks but has no record under
   * keys.hosts() (the daemon keeps its record under a lease, so it vanishes when the lease
   * expires). Only for clusters where every allocating host runs the daemon.
   */
  hostsFromRegistry?: boolean;
  /** Only this pool (default: every pool). */
  poolId?: string;
}

/** Free addresses and clean the owner index, through compare-and-swap. */
export class Reclaimer {
  constructor(
    private readonly store: Store,
    private readonly retry: RetryPolicy,
  ) {}

  private read<T>(fn: () => Promise<T>): Promise<T> {
    return retryStore(fn, this.retry);
  }

  /**
   * Delete the address record `kv` (as read) and its owner index entry. False when the record
   * changed or vanished meanwhile (someone else freed or re-took it).
   */
  async free(kv: KeyValue, depth = 0): Promise<boolean> {
    const rec = decode<AddressRecord>(kv);
    const compares: Compare[] = [unchanged(kv.key, kv.modRevision)];
    const ops: Op[] = [{ type: 'delete', key: kv.key }];
    if (rec.owner) {
      const ok = keys.ipamOwner(rec.owner, rec.pool);
      const o = await this.read(() => this.store.get(ok));
      if (o && decode<OwnerRecord>(o).req === rec.req) {
        compares.push(unchanged(ok, o.modRevision));
        ops.push({ type: 'delete', key: ok });
      }
    }
    // Retrying the same CAS is safe: once applied, its compare fails and nothing else is touched.
    let tries = 0;
    const r = await this.read(() => (tries++, this.store.txn(compares, ops)));
    if (r.succeeded) return true;
    const now = await this.read(() => this.store.get(kv.key));
    // Gone after a retried CAS: the earlier try most likely applied; either way it is free.
    if (!now) return tries > 1;
    if (now.modRevision === kv.modRevision && depth < 8) return this.free(now, depth + 1);
    return false;
  }

  /** Free the address record at key if present; returns the freed allocation. */
  async freeKey(key: string): Promise<Allocation | undefined> {
    for (let i = 0; i < 8; i++) {
      const kv = await this.read(() => this.store.get(key));
      if (!kv) return undefined;
      if (await this.free(kv)) return toAllocation(decode<AddressRecord>(kv));
    }
    return undefined;
  }

  /** The live allocations of owner (one per pool), through the owner index. */
  async allocationsOf(owner: string): Promise<Allocation[]> {
    const idx = await this.read(() => this.store.range(keys.ipamOwnerPools(owner)));
    const out: Allocation[] = [];
    for (const o of idx.kvs) {
      const or = decode<OwnerRecord>(o);
      const kv = await this.read(() => this.store.get(keys.ipamBlockAddress(lastSegment(o.key), or.block, or.address)));
      const rec = kv && decode<AddressRecord>(kv);
      if (rec && rec.req === or.req) out.push(toAllocation(rec));
    }
    return out;
  }

  /** Free every address of owner, in every pool. */
  async releaseOwner(owner: string): Promise<Allocation[]> {
    const idx = await this.read(() => this.store.range(keys.ipamOwnerPools(owner)));
    const out: Allocation[] = [];
    for (const o of idx.kvs) {
      const or = decode<OwnerRecord>(o);
      const poolId = lastSegment(o.key);
      const freed = await this.freeIf(keys.ipamBlockAddress(poolId, or.block, or.address), or.req);
      if (freed) out.push(freed);
      else await this.read(() => this.store.txn([unchanged(o.key, o.modRevision)], [{ type: 'delete', key: o.key }]));
    }
    return out;
  }

  private async freeIf(key: string, req: string): Promise<Allocation | undefined> {
    const kv = await this.read(() => this.store.get(key));
    if (!kv || decode<AddressRecord>(kv).req !== req) return undefined;
    return (await this.free(kv)) ? toAllocation(decode<AddressRecord>(kv)) : undefined;
  }

  /** Free allocations whose owner is invalid or whose host is dead; clean stale index entries and dead hosts' blocks. */
  async gc(opts: GcOptions): Promise<Allocation[]> {
    const dead = new Set(opts.deadHosts ?? []);
    const all = await this.read(() => this.store.range(opts.poolId ? keys.ipamAddresses(opts.poolId) : keys.ipamAllAddresses()));
    if (opts.hostsFromRegistry) for (const h of await this.unregistered(all.kvs, opts.poolId)) dead.add(h);
    const freed: Allocation[] = [];
    for (const kv of all.kvs) {
      const rec = decode<AddressRecord>(kv);
      const ownerGone = rec.owner !== null && !(await opts.isOwnerValid(rec.owner, toAllocation(rec)));
      const hostGone = rec.kind === 'endpoint' && dead.has(rec.host);
      if ((ownerGone || hostGone) && (await this.free(kv))) freed.push(toAllocation(rec));
    }
    await this.cleanOwnerIndex(opts.poolId);
    if (dead.size > 0) await this.releaseBlocks(dead, opts.poolId);
    return freed;
  }

  private async unregistered(addrs: KeyValue[], poolId?: string): Promise<string[]> {
    const [live, blocks] = await Promise.all([
      this.read(() => this.store.range(keys.hosts())),
      this.read(() => this.store.range(poolId ? keys.ipamBlocks(poolId) : keys.ipamAllBlocks())),
    ]);
    const alive = new Set(live.kvs.map((kv) => lastSegment(kv.key)));
    const seen = new Set([...addrs.map((kv) => decode<AddressRecord>(kv).host), ...blocks.kvs.map((kv) => decode<BlockRecord>(kv).host)]);
    return [...seen].filter((h) => !alive.has(h));
  }

  private async cleanOwnerIndex(poolId?: string): Promise<void> {
    const idx = await this.read(() => this.store.range(keys.ipamOwners()));
    for (const o of idx.kvs) {
      const pool = parseKey(o.key).at(-1)!;
      if (poolId !== undefined && pool !== poolId) continue;
      const or = decode<OwnerRecord>(o);
      const a = await this.read(() => this.store.get(keys.ipamBlockAddress(pool, or.block, or.address)));
      if (!a || decode<AddressRecord>(a).req !== or.req) {
        await this.read(() => this.store.txn([unchanged(o.key, o.modRevision)], [{ type: 'delete', key: o.key }]));
      }
    }
  }

  // Affinity only: addresses other hosts borrowed in these blocks stay allocated (their keys
  // are the truth); the blocks become claimable again.
  private async releaseBlocks(dead: Set<string>, poolId?: string): Promise<void> {
    const blocks = await this.read(() => this.store.range(poolId ? keys.ipamBlocks(poolId) : keys.ipamAllBlocks()));
    for (const kv of blocks.kvs) {
      if (!dead.has(decode<BlockRecord>(kv).host)) continue;
      await this.read(() => this.store.txn([unchanged(kv.key, kv.modRevision)], [{ type: 'delete', key: kv.key }]));
    }
  }
}
