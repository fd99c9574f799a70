// One block of a pool as an allocator instance believes it to be: its affinity and which
// addresses are taken or being tried. Only a cache: every allocation is still a CAS in the store.
import { type Cidr, cidrLast, formatCidr } from './cidr.js';
import { type PoolView, blockAlloc, blockAt, isHandout } from './pool.js';

export type Held = 'taken' | 'pending';

/** The cached state of one block. */
export class BlockState {
  readonly cidr: Cidr;
  readonly name: string;
  /** Host the block is affine to; undefined while unclaimed. */
  host: string | undefined;
  /** True once the addresses were read from the store. */
  loaded = false;
  loading: Promise<void> | undefined;
  private readonly held = new Map<bigint, Held>();
  private readonly handouts: bigint;
  private used = 0n;

  constructor(
    private readonly pool: PoolView,
    readonly index: bigint,
  ) {
    this.cidr = blockAt(pool, index);
    this.name = formatCidr(this.cidr);
    const a = blockAlloc(pool, this.cidr);
    let n = a ? a.end - a.start + 1n : 0n;
    const excluded = new Set<bigint>(pool.reserved);
    if (pool.gateway !== undefined) excluded.add(pool.gateway);
    if (a) for (const x of excluded) if (x >= a.start && x <= a.end) n--;
    this.handouts = n;
  }

  /** Addresses "next free" could still try here. */
  get free(): bigint {
    return this.handouts - this.used;
  }

  state(v: bigint): Held | undefined {
    return this.held.get(v);
  }

  set(v: bigint, s: Held): void {
    if (!this.held.has(v) && isHandout(this.pool, v)) this.used++;
    this.held.set(v, s);
  }

  clear(v: bigint): void {
    if (this.held.delete(v) && isHandout(this.pool, v)) this.used--;
  }

  /** Replace the taken set with a fresh read, keeping in-flight (pending) tries. */
  replaceTaken(taken: Iterable<bigint>): void {
    const pending = [...this.held].filter(([, s]) => s === 'pending').map(([v]) => v);
    this.held.clear();
    this.used = 0n;
    for (const v of taken) this.set(v, 'taken');
    for (const v of pending) this.set(v, 'pending');
    this.loaded = true;
  }

  /** The first free handout in [from, to] (clamped to the block), or undefined. */
  scan(from: bigint, to: bigint): bigint | undefined {
    const lo = from > this.cidr.base ? from : this.cidr.base;
    const last = cidrLast(this.cidr);
    const hi = to < last ? to : last;
    for (let v = lo; v <= hi; v++) if (!this.held.has(v) && isHandout(this.pool, v)) return v;
    return undefined;
  }
}
