// Pool lifecycle over the store: create (explicit or auto-chosen), share by ref, release,
// read. Every write is one compare-and-swap on the address space's record and the pool key,
// so two hosts can never create overlapping pools, even when a write is retried.
import { randomUUID } from 'node:crypto';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { type DefaultPools, findAutoPool, noAutoPool, parseRoutes } from './auto-pool.js';
import { type Cidr, cidrsOverlap, formatCidr, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';
import { type AddressSpace, type PoolRecord, buildPool, parseSpace } from './pool.js';
import { type OwnerRecord, type SpaceRecord, type AddressRecord, absent, decode, unchanged } from './records.js';

/** A pool request (Docker RequestPool / a CNI range). */
export interface PoolRequest {
  space: AddressSpace;
  /** Explicit subnet; omitted = auto-chosen from the default pools. */
  cidr?: string;
  /** Docker --ip-range (a CIDR) or CNI rangeStart/rangeEnd; needs cidr. */
  range?: string | { start: string; end: string };
  /** Auto pools: IPv6 instead of IPv4. Explicit pools: must match the subnet's family when given. */
  v6?: boolean;
  gateway?: string;
  reserved?: string[];
  /** Who holds this request (pool is shared by identical requests and freed with its last ref). */
  ref?: string;
}

/** A pool as callers see it. */
export interface PoolInfo {
  poolId: string;
  space: AddressSpace;
  cidr: string;
  range: { start: string; end: string } | null;
  gateway: string | null;
  reserved: string[];
  v6: boolean;
  auto: boolean;
  refs: string[];
  blockPrefix: number;
}

export interface PoolManagerOptions {
  hostId: string;
  defaultPools: DefaultPools;
  blockPrefix: { v4: number; v6: number };
  hostRoutes: () => Promise<string[]>;
  now: () => string;
}

const MAX_ATTEMPTS = 32;

/** Pool creation, sharing and release. */
export class PoolManager {
  constructor(
    private readonly store: Store,
    private readonly opts: PoolManagerOptions,
  ) {}

  /** Create or join a pool; returns it. Bad input throws before anything is written. */
  async request(req: PoolRequest): Promise<PoolInfo> {
    const space = parseSpace(req.space);
    if (req.cidr === undefined) {
      if (req.range !== undefined || req.gateway !== undefined || (req.reserved?.length ?? 0) > 0) {
        throw new IpamError('invalid-request', 'a range, gateway or reserved addresses need an explicit subnet');
      }
      return this.requestAuto(space, req.v6 === true, req.ref);
    }
    const built = buildPool({ space, cidr: req.cidr, range: req.range, gateway: req.gateway, reserved: req.reserved }, this.opts.blockPrefix);
    if (req.v6 !== undefined && req.v6 !== (built.family === 6)) {
      throw new IpamError('invalid-cidr', `subnet ${req.cidr} is not an IPv${req.v6 ? 6 : 4} subnet`);
    }
    const ref = req.ref ?? randomUUID();
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const { space: sp, rev } = await this.readSpace(space);
      if (sp.pools[built.id]) {
        const joined = await this.join(built.id, ref, built, req);
        if (joined) return joined;
        continue;
      }
      const mine = parseCidr(built.cidr);
      for (const [id, p] of Object.entries(sp.pools)) {
        if (cidrsOverlap(parseCidr(p.cidr), mine)) {
          throw new IpamError('pool-overlap', `subnet ${built.cidr} overlaps pool ${id} in the ${space} address space`);
        }
      }
      const rec: PoolRecord = { ...built, auto: false, refs: [ref], created: this.opts.now(), createdBy: this.opts.hostId };
      if (await this.create(rec, sp, rev)) return info(rec);
    }
    throw contention(`creating pool ${built.id}`);
  }

  private async requestAuto(space: AddressSpace, v6: boolean, ref?: string): Promise<PoolInfo> {
    const family = v6 ? 6 : 4;
    const defaults = this.opts.defaultPools[space] ?? [];
    const routes = parseRoutes(await this.opts.hostRoutes());
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const { space: sp, rev } = await this.readSpace(space);
      if (ref !== undefined) {
        const replay = await this.findAutoByRef(sp, ref, family);
        if (replay) return info(replay);
      }
      const taken: Cidr[] = [...Object.values(sp.pools).map((p) => parseCidr(p.cidr)), ...routes];
      const chosen = findAutoPool(defaults, family, taken);
      if (!chosen) throw noAutoPool(space, family, defaults);
      const built = buildPool({ space, cidr: formatCidr(chosen) }, this.opts.blockPrefix);
      const rec: PoolRecord = { ...built, auto: true, refs: [ref ?? randomUUID()], created: this.opts.now(), createdBy: this.opts.hostId };
      if (await this.create(rec, sp, rev)) return info(rec);
    }
    throw contention(`choosing a ${space} pool`);
  }

  // A replayed auto request (same ref) gets the pool it already holds, not a second one.
  private async findAutoByRef(sp: SpaceRecord, ref: string, family: 4 | 6): Promise<PoolRecord | undefined> {
    for (const [id, p] of Object.entries(sp.pools)) {
      if (!p.auto || p.cidr.includes(':') !== (family === 6)) continue;
      const kv = await this.store.get(keys.ipamPool(id));
      const rec = kv && decode<PoolRecord>(kv);
      if (rec?.refs.includes(ref)) return rec;
    }
    return undefined;
  }

  private async create(rec: PoolRecord, sp: SpaceRecord, spaceRev: number): Promise<boolean> {
    const next: SpaceRecord = { pools: { ...sp.pools, [rec.id]: { cidr: rec.cidr, auto: rec.auto } } };
    const spaceKey = keys.ipamSpace(rec.space);
    const r = await this.store.txn(
      [unchanged(spaceKey, spaceRev), absent(keys.ipamPool(rec.id))],
      [
        { type: 'put', key: spaceKey, value: JSON.stringify(next) },
        { type: 'put', key: keys.ipamPool(rec.id), value: JSON.stringify(rec) },
      ],
    );
    return r.succeeded;
  }

  // Join an existing identical pool: add the ref (CAS on the pool). Undefined = raced, retry.
  private async join(id: string, ref: string, want: Omit<PoolRecord, 'refs' | 'created' | 'createdBy' | 'auto'>, req: PoolRequest): Promise<PoolInfo | undefined> {
    const kv = await this.store.get(keys.ipamPool(id));
    if (!kv) return undefined;
    const rec = decode<PoolRecord>(kv);
    if (req.gateway !== undefined && rec.gateway !== want.gateway) {
      throw new IpamError('pool-conflict', `pool ${id} exists with gateway ${rec.gateway ?? 'none'}, not ${want.gateway}`);
    }
    if (req.reserved !== undefined && want.reserved.join(',') !== rec.reserved.join(',')) {
      throw new IpamError('pool-conflict', `pool ${id} exists with reserved addresses [${rec.reserved.join(', ')}], not [${want.reserved.join(', ')}]`);
    }
    if (rec.refs.includes(ref)) return info(rec);
    const next: PoolRecord = { ...rec, refs: [...rec.refs, ref] };
    const r = await this.store.txn([unchanged(kv.key, kv.modRevision)], [{ type: 'put', key: kv.key, value: JSON.stringify(next) }]);
    return r.succeeded ? info(next) : undefined;
  }

  /**
   * Drop one ref (the given one, or the newest when omitted); with the last ref the pool, its
   * blocks and every address in it are deleted. Returns true when the pool itself went away.
   */
  async release(poolId: string, ref?: string): Promise<boolean> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const kv = await this.store.get(poolKey(poolId));
      if (!kv) throw unknownPool(poolId);
      const rec = decode<PoolRecord>(kv);
      const drop = ref ?? rec.refs[rec.refs.length - 1];
      if (drop !== undefined && !rec.refs.includes(drop)) return false;
      const refs = rec.refs.filter((r) => r !== drop);
      if (refs.length > 0) {
        const r = await this.store.txn([unchanged(kv.key, kv.modRevision)], [{ type: 'put', key: kv.key, value: JSON.stringify({ ...rec, refs }) }]);
        if (r.succeeded) return false;
        continue;
      }
      if (await this.destroy(rec, kv.modRevision)) return true;
    }
    throw contention(`releasing pool ${poolId}`);
  }

  private async destroy(rec: PoolRecord, poolRev: number): Promise<boolean> {
    // Owner keys live outside the pool's prefix: collect them first. One that escapes (an
    // allocation racing the delete) is stale and is ignored/cleaned by allocation and GC.
    const addrs = await this.store.range(keys.ipamAddresses(rec.id));
    const { space: sp, rev } = await this.readSpace(rec.space);
    const pools = { ...sp.pools };
    delete pools[rec.id];
    const spaceKey = keys.ipamSpace(rec.space);
    const r = await this.store.txn(
      [unchanged(keys.ipamPool(rec.id), poolRev), unchanged(spaceKey, rev)],
      [
        { type: 'delete', key: keys.ipamPool(rec.id) },
        { type: 'put', key: spaceKey, value: JSON.stringify({ pools } satisfies SpaceRecord) },
        { type: 'deletePrefix', prefix: keys.ipamBlocks(rec.id) },
        { type: 'deletePrefix', prefix: keys.ipamAddresses(rec.id) },
        { type: 'deletePrefix', prefix: keys.ipamCursors(rec.id) },
      ],
    );
    if (!r.succeeded) return false;
    for (const kv of addrs.kvs) {
      const a = decode<AddressRecord>(kv);
      if (a.owner) await this.deleteOwnerIf(a.owner, rec.id, a.req);
    }
    return true;
  }

  /** Delete an owner index entry only while it still points at the allocation `req`. */
  async deleteOwnerIf(owner: string, poolId: string, req: string): Promise<void> {
    const k = keys.ipamOwner(owner, poolId);
    const kv = await this.store.get(k);
    if (kv && decode<OwnerRecord>(kv).req === req) await this.store.txn([unchanged(k, kv.modRevision)], [{ type: 'delete', key: k }]);
  }

  /** Make address the pool's gateway unless the pool was created with an explicit one. */
  async moveGateway(poolId: string, address: string): Promise<void> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const kv = await this.store.get(poolKey(poolId));
      if (!kv) throw unknownPool(poolId);
      const rec = decode<PoolRecord>(kv);
      if (rec.gatewayExplicit || rec.gateway === address) return;
      const next: PoolRecord = { ...rec, gateway: address, gatewayExplicit: true };
      const r = await this.store.txn([unchanged(kv.key, kv.modRevision)], [{ type: 'put', key: kv.key, value: JSON.stringify(next) }]);
      if (r.succeeded) return;
    }
    throw contention(`moving the gateway of pool ${poolId}`);
  }

  /** The stored pool with its key revisions, or unknown-pool. */
  async read(poolId: string): Promise<{ rec: PoolRecord; createRevision: number; modRevision: number }> {
    const kv = await this.store.get(poolKey(poolId));
    if (!kv) throw unknownPool(poolId);
    return { rec: decode<PoolRecord>(kv), createRevision: kv.createRevision, modRevision: kv.modRevision };
  }

  /** Every pool (optionally of one space), in key order. */
  async list(space?: AddressSpace): Promise<PoolInfo[]> {
    const r = await this.store.range(keys.ipamPools());
    return r.kvs.map((kv) => info(decode<PoolRecord>(kv))).filter((p) => space === undefined || p.space === space);
  }

  private async readSpace(space: AddressSpace): Promise<{ space: SpaceRecord; rev: number }> {
    const kv = await this.store.get(keys.ipamSpace(space));
    return kv ? { space: decode<SpaceRecord>(kv), rev: kv.modRevision } : { space: { pools: {} }, rev: 0 };
  }
}

/** The public view of a pool record. */
export function info(rec: PoolRecord): PoolInfo {
  return {
    poolId: rec.id,
    space: rec.space,
    cidr: rec.cidr,
    range: rec.range,
    gateway: rec.gateway,
    reserved: rec.reserved,
    v6: rec.family === 6,
    auto: rec.auto,
    refs: rec.refs,
    blockPrefix: rec.blockPrefix,
  };
}

/** The pool key for an id given by a caller (anything that cannot be a pool id is unknown). */
export function poolKey(poolId: unknown): string {
  if (typeof poolId !== 'string' || poolId.length === 0 || poolId.length > 200) throw unknownPool(poolId);
  return keys.ipamPool(poolId);
}

export function unknownPool(poolId: unknown): IpamError {
  return new IpamError('unknown-pool', `unknown pool ${JSON.stringify(poolId)}`);
}

export function contention(what: string): IpamError {
  return new IpamError('contention', `gave up ${what} after ${MAX_ATTEMPTS} conflicting attempts; retry`);
}
