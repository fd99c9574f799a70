// The IPAM: address spaces, pools and addresses over the store, shared by the Docker IPAM
// driver and the CNI tsipam plugin. Safe across hosts and processes (every write is a CAS);
// an instance holds only caches, one per process and host id.
import { randomUUID } from 'node:crypto';
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { PoolAllocator, PoolChanged } from './allocator.js';
import { type DefaultPools, checkDefaultPools, dockerDefaultPools } from './auto-pool.js';
import { type Addr, cidrContains, formatAddr, parseAddress, usableBounds } from './cidr.js';
import { IpamError } from './errors.js';
import type { AddressSpace } from './pool.js';
import { type PoolInfo, type PoolRequest, PoolManager, contention, info } from './pools.js';
import { type GcOptions, Reclaimer } from './reclaim.js';
import { type AddressRecord, type Allocation, type AllocationKind, checkOwner, decode, toAllocation } from './records.js';
import { DEFAULT_RETRY, type RetryPolicy, retryStore } from './retry.js';
import { setAllocationOwner } from './set-owner.js';

export interface IpamOptions {
  /** This host's id: block affinity and the `host` of every allocation. */
  hostId: string;
  /** Ranges auto pools are carved from (default: Docker's, see dockerDefaultPools). */
  defaultPools?: DefaultPools;
  /** Block prefix lengths for new pools (default /26 IPv4, /122 IPv6). */
  blockPrefix?: { v4?: number; v6?: number };
  /** The host's routes as CIDRs; auto pools never overlap them (default: none known). */
  hostRoutes?: () => Promise<string[]>;
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number;
  /** Retries of store calls that failed retryably (default 8 tries, 50 ms doubling to 1 s). */
  retry?: RetryPolicy;
}

/** An address request (Docker RequestAddress / CNI ADD). */
export interface AddressRequest {
  /** Who holds the address; the same owner asking again gets the same address. */
  owner?: string;
  /** A specific address (Docker --ip, CNI `ips` / IP=); for a gateway, the gateway address. */
  address?: string;
  /** Default 'endpoint'. Gateway and aux requests are idempotent, from every host. */
  kind?: AllocationKind;
  /** With `address`: it must also lie inside the pool's range (CNI semantics; Docker only needs the subnet). */
  inRange?: boolean;
}

export interface AddressResult {
  address: string;
  prefixLength: number;
  /** The pool's subnet. */
  cidr: string;
  gateway: string | null;
  poolId: string;
  kind: AllocationKind;
  owner: string | null;
}

const KINDS: readonly AllocationKind[] = ['endpoint', 'gateway', 'aux'];

/** Address management over a Store. */
export class Ipam {
  private readonly pools: PoolManager;
  private readonly reclaim: Reclaimer;
  private readonly allocators = new Map<string, Promise<PoolAllocator>>();
  private readonly retry: RetryPolicy;
  private readonly now: () => string;

  constructor(
    private readonly store: Store,
    private readonly opts: IpamOptions,
  ) {
    if (typeof opts.hostId !== 'string' || opts.hostId.length === 0) throw new IpamError('invalid-request', 'hostId is required');
    const defaultPools = opts.defaultPools ?? dockerDefaultPools();
    checkDefaultPools(defaultPools);
    const blockPrefix = { v4: opts.blockPrefix?.v4 ?? 26, v6: opts.blockPrefix?.v6 ?? 122 };
    if (!(blockPrefix.v4 >= 8 && blockPrefix.v4 <= 32 && blockPrefix.v6 >= 64 && blockPrefix.v6 <= 128)) {
      throw new IpamError('invalid-request', `block prefix /${blockPrefix.v4} (IPv4) or /${blockPrefix.v6} (IPv6) is out of range`);
    }
    const clock = opts.clock ?? Date.now;
    this.now = () => new Date(clock()).toISOString();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    const hostRoutes = opts.hostRoutes ?? (async () => []);
    this.pools = new PoolManager(store, { hostId: opts.hostId, defaultPools, blockPrefix, hostRoutes, now: this.now });
    this.reclaim = new Reclaimer(store, this.retry);
  }

  /** Docker's GetDefaultAddressSpaces. */
  defaultAddressSpaces(): { local: AddressSpace; global: AddressSpace } {
    return { local: 'local', global: 'global' };
  }

  /** Create or join a pool (see PoolRequest). Bad input throws IpamError and writes nothing. */
  requestPool(req: PoolRequest): Promise<PoolInfo> {
    // One ref for every try: a retried create that had applied then finds (joins) its own pool.
    const withRef = { ...req, ref: req.ref ?? randomUUID() };
    return this.retried(() => this.pools.request(withRef));
  }

  /** Drop a ref of the pool (the newest when omitted); the last one deletes the pool and its allocations. True when the pool went away. */
  async releasePool(poolId: string, ref?: string): Promise<boolean> {
    let tried = false;
    const gone = await this.retried(async () => {
      try {
        return await this.pools.release(poolId, ref);
      } catch (err) {
        // A retried release whose first try did delete the pool finds it gone: that is success.
        if (tried && err instanceof IpamError && err.code === 'unknown-pool') return true;
        throw err;
      } finally {
        tried = true;
      }
    });
    this.allocators.delete(poolId);
    return gone;
  }

  /** The pool, or unknown-pool. */
  async getPool(poolId: string): Promise<PoolInfo> {
    return info((await this.retried(() => this.pools.read(poolId))).rec);
  }

  /** Every pool, optionally of one space. */
  listPools(space?: AddressSpace): Promise<PoolInfo[]> {
    return this.retried(() => this.pools.list(space));
  }

  /**
   * Allocate an address: the next free one (round-robin from this host's last allocation), or
   * the requested one. Network, broadcast, gateway and reserved addresses are never handed
   * out as endpoints. The same owner asking again gets its address back.
   */
  async requestAddress(poolId: string, req: AddressRequest = {}): Promise<AddressResult> {
    const owner = req.owner === undefined || req.owner === null ? null : checkOwner(req.owner);
    const kind = req.kind ?? 'endpoint';
    if (!KINDS.includes(kind)) throw new IpamError('invalid-request', `unknown address kind ${JSON.stringify(kind)}`);
    for (let i = 0; i < 4; i++) {
      const alloc = await this.allocator(poolId);
      try {
        const rec =
          kind === 'gateway'
            ? await this.gateway(alloc, req.address, owner)
            : req.address !== undefined
              ? await this.requested(alloc, req.address, owner, kind, req.inRange === true)
              : await alloc.next(owner, kind);
        return this.result(alloc, rec);
      } catch (err) {
        if (!(err instanceof PoolChanged)) throw err;
        this.allocators.delete(poolId);
      }
    }
    throw contention(`allocating in pool ${poolId} (the pool keeps being re-created)`);
  }

  /** Free one address; false when it was not allocated. */
  async releaseAddress(poolId: string, address: string): Promise<boolean> {
    const alloc = await this.allocator(poolId);
    const a = this.inPool(alloc, address, 'address');
    const key = keys.ipamBlockAddress(poolId, alloc.blockOf(a.value), formatAddr(a));
    const freed = await this.reclaim.freeKey(key);
    alloc.forget(a.value);
    return freed !== undefined;
  }

  /**
   * Give an address allocated without an owner its owner (Docker: the driver learns the endpoint
   * at CreateEndpoint). False when the address is not allocated; 'owner-conflict' when someone
   * else owns it or owner holds another address of the pool. Idempotent.
   */
  async setOwner(poolId: string, address: string, owner: string): Promise<boolean> {
    const who = checkOwner(owner);
    const alloc = await this.allocator(poolId);
    const a = this.inPool(alloc, address, 'address');
    const key = keys.ipamBlockAddress(poolId, alloc.blockOf(a.value), formatAddr(a));
    return this.retried(() => setAllocationOwner(this.store, poolId, key, who));
  }

  /** Free every address of an owner (in every pool). */
  async releaseOwner(owner: string): Promise<Allocation[]> {
    const freed = await this.reclaim.releaseOwner(checkOwner(owner));
    await this.forget(freed);
    return freed;
  }

  /** The addresses an owner holds (at most one per pool), without reading whole pools. */
  allocationsOf(owner: string): Promise<Allocation[]> {
    return this.reclaim.allocationsOf(checkOwner(owner));
  }

  /** Allocations of one pool or of all pools, in key order. */
  async listAllocations(poolId?: string): Promise<Allocation[]> {
    const r = await this.retried(() => this.store.range(poolId === undefined ? keys.ipamAllAddresses() : keys.ipamAddresses(poolId)));
    return r.kvs.map((kv) => toAllocation(decode<AddressRecord>(kv)));
  }

  /** Free allocations whose owner no longer exists or whose host is dead; returns what was freed. */
  async gc(opts: GcOptions): Promise<Allocation[]> {
    const freed = await this.reclaim.gc(opts);
    await this.forget(freed);
    return freed;
  }

  private retried<T>(fn: () => Promise<T>): Promise<T> {
    return retryStore(fn, this.retry);
  }

  private async forget(freed: Allocation[]): Promise<void> {
    for (const f of freed) {
      const alloc = await this.allocators.get(f.poolId)?.catch(() => undefined);
      alloc?.forget(parseAddress(f.address).value);
    }
  }

  private allocator(poolId: string): Promise<PoolAllocator> {
    let p = this.allocators.get(poolId);
    if (!p) {
      p = this.retried(() => this.pools.read(poolId)).then(
        ({ rec, createRevision }) => new PoolAllocator({ store: this.store, hostId: this.opts.hostId, now: this.now, retry: this.retry }, rec, createRevision),
      );
      p.catch(() => this.allocators.delete(poolId));
      this.allocators.set(poolId, p);
    }
    return p;
  }

  private inPool(alloc: PoolAllocator, text: string, what: string): Addr {
    const a = parseAddress(text, what);
    if (!cidrContains(alloc.view.cidr, a)) throw new IpamError('address-outside-pool', `${what} ${text} is outside pool ${alloc.poolId}`);
    return a;
  }

  private async requested(alloc: PoolAllocator, text: string, owner: string | null, kind: AllocationKind, inRange: boolean): Promise<AddressRecord> {
    const p = alloc.view;
    const a = this.inPool(alloc, text, 'address');
    const shown = formatAddr(a);
    if (inRange && (a.value < p.alloc.start || a.value > p.alloc.end)) {
      throw new IpamError('address-outside-pool', `address ${text} is outside the range ${p.rec.range?.start}-${p.rec.range?.end} of pool ${p.rec.id}`);
    }
    const u = usableBounds(p.cidr);
    if (a.value < u.start || a.value > u.end) throw new IpamError('address-reserved', `address ${text} is the network or broadcast address of pool ${p.rec.id}`);
    if (a.value === p.gateway) throw new IpamError('address-reserved', `address ${text} is the gateway of pool ${p.rec.id}`);
    if (kind === 'endpoint' && p.reserved.has(a.value)) throw new IpamError('address-reserved', `address ${text} is reserved in pool ${p.rec.id}`);
    const r = await alloc.take(a.value, owner, kind);
    if (r.status === 'ok') return r.rec;
    if (r.status === 'owner') {
      if (r.rec.address === shown) return r.rec;
      throw new IpamError('owner-conflict', `owner ${owner} already holds ${r.rec.address} in pool ${p.rec.id}, not ${shown}`);
    }
    // A replayed aux request (Docker RequestReplay) finds its own address: that is success.
    if ((kind === 'aux' && r.rec.kind === 'aux' && r.rec.owner === owner) || (owner !== null && r.rec.owner === owner)) return r.rec;
    throw taken(shown, r.rec);
  }

  private async gateway(alloc: PoolAllocator, text: string | undefined, owner: string | null): Promise<AddressRecord> {
    const p = alloc.view;
    let value: bigint;
    if (text === undefined) {
      if (p.gateway === undefined) throw new IpamError('invalid-request', `pool ${p.rec.id} has no gateway address (a single-address subnet)`);
      value = p.gateway;
    } else {
      const a = parseAddress(text, 'gateway');
      if (!cidrContains(p.cidr, a)) throw new IpamError('gateway-outside-subnet', `gateway ${text} is outside subnet ${p.rec.cidr} of pool ${p.rec.id}`);
      const u = usableBounds(p.cidr);
      if (a.value < u.start || a.value > u.end) throw new IpamError('invalid-gateway', `gateway ${text} is the network or broadcast address of subnet ${p.rec.cidr}`);
      value = a.value;
    }
    const r = await alloc.take(value, owner, 'gateway');
    // The distributed gateway: every host asks for the same gateway, and a replay must succeed.
    if (r.status === 'ok' || r.rec.kind === 'gateway') {
      if (value !== p.gateway && !p.rec.gatewayExplicit) {
        // Docker sends --gateway only here: it replaces the default (first usable) gateway.
        await this.retried(() => this.pools.moveGateway(p.rec.id, r.rec.address));
        this.allocators.delete(p.rec.id);
      }
      return r.rec;
    }
    throw taken(formatAddr({ family: p.cidr.family, value }), r.rec);
  }

  private result(alloc: PoolAllocator, rec: AddressRecord): AddressResult {
    const p = alloc.view;
    return {
      address: rec.address,
      prefixLength: p.cidr.prefix,
      cidr: p.rec.cidr,
      gateway: rec.kind === 'gateway' ? rec.address : p.rec.gateway,
      poolId: p.rec.id,
      kind: rec.kind,
      owner: rec.owner,
    };
  }
}

function taken(address: string, holder: AddressRecord): IpamError {
  const who = holder.owner ?? `a ${holder.kind} address`;
  return new IpamError('address-taken', `address ${address} in pool ${holder.pool} is already allocated to ${who} (host ${holder.host})`);
}
