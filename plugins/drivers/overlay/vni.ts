// Cluster-wide VNI allocation: one key per VNI (keys.vni(n)) holding the network id, taken by
// compare-and-swap create-if-absent, so two hosts never give one VNI to two networks. A write
// that timed out may have applied: the retry finds the key holding our network id and keeps it.
import { isRetryable } from '../../../store/errors.js';
import { keys, lastSegment } from '../../../store/keys.js';
import type { Store } from '../../../store/types.js';
import { DriverError } from '../common/errors.js';
import { OVERLAY_DEFAULTS } from './config.js';

/** The value stored under keys.vni(n). */
export interface VniRecord {
  networkId: string;
  createdAt: string;
}

export interface VniAllocatorOptions {
  /** First VNI handed out automatically (default 4096). */
  first?: number;
  /** Last VNI (default 16777215). */
  last?: number;
  /** Attempts per store write that failed retryably (default 4). */
  retries?: number;
  now?: () => Date;
}

/** Allocates and releases VNIs in the store. Holds no state between calls. */
export class VniAllocator {
  private readonly first: number;
  private readonly last: number;
  private readonly retries: number;
  private readonly now: () => Date;

  constructor(
    private readonly store: Store,
    opts: VniAllocatorOptions = {},
  ) {
    this.first = opts.first ?? OVERLAY_DEFAULTS.vniFirst;
    this.last = opts.last ?? OVERLAY_DEFAULTS.vniMax;
    this.retries = opts.retries ?? 4;
    this.now = opts.now ?? (() => new Date());
  }

  /** Every allocated VNI → network id. */
  async list(): Promise<Map<number, string>> {
    const { kvs } = await this.store.range(keys.vnis());
    const out = new Map<number, string>();
    for (const kv of kvs) {
      const vni = Number(lastSegment(kv.key));
      const id = holder(kv.value);
      if (Number.isInteger(vni) && id !== undefined) out.set(vni, id);
    }
    return out;
  }

  /**
   * Take `vni` for `networkId`. Resolves when it is (now or already) the network's; throws
   * DriverError 'vni-taken' when another network holds it.
   */
  async claim(networkId: string, vni: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (await this.tryTake(networkId, vni)) return vni;
        const cur = await this.store.get(keys.vni(vni));
        if (!cur) continue; // released meanwhile: try again
        const id = holder(cur.value);
        if (id === networkId) return vni;
        throw new DriverError('vni-taken', `VNI ${vni} already belongs to network ${id ?? '(unreadable record)'}`, { field: 'vni', value: vni });
      } catch (err) {
        if (!isRetryable(err) || attempt + 1 >= this.retries) throw err;
      }
    }
  }

  /**
   * A VNI for `networkId`: the one it already holds (a replayed request), else the lowest free
   * one from `first`. 'vni-exhausted' when none is left.
   */
  async allocate(networkId: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        const taken = await this.list();
        for (const [vni, id] of taken) if (id === networkId) return vni;
        for (let vni = this.first; vni <= this.last; vni++) {
          if (taken.has(vni)) continue;
          if (await this.tryTake(networkId, vni)) return vni;
          taken.set(vni, ''); // lost a race for it: next one
        }
        throw new DriverError('vni-exhausted', `no free VNI between ${this.first} and ${this.last}`);
      } catch (err) {
        // After a timed-out write the next pass finds the VNI if that write applied.
        if (!isRetryable(err) || attempt + 1 >= this.retries) throw err;
      }
    }
  }

  /** Release `vni` if `networkId` holds it (compare-and-swap); true when it was released. */
  async release(networkId: string, vni: number): Promise<boolean> {
    const key = keys.vni(vni);
    const cur = await this.store.get(key);
    if (!cur || holder(cur.value) !== networkId) return false;
    const r = await this.store.txn([{ key, target: 'modRevision', op: '==', value: cur.modRevision }], [{ type: 'delete', key }]);
    return r.succeeded;
  }

  private async tryTake(networkId: string, vni: number): Promise<boolean> {
    if (!Number.isInteger(vni) || vni < 1 || vni > OVERLAY_DEFAULTS.vniMax) {
      throw new DriverError('invalid-config', `invalid vni ${JSON.stringify(vni)}: must be between 1 and ${OVERLAY_DEFAULTS.vniMax}`, { field: 'vni', value: vni });
    }
    const key = keys.vni(vni);
    const rec: VniRecord = { networkId, createdAt: this.now().toISOString() };
    const r = await this.store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: JSON.stringify(rec) }]);
    return r.succeeded;
  }
}

function holder(value: string): string | undefined {
  try {
    const v = JSON.parse(value) as Partial<VniRecord>;
    return typeof v.networkId === 'string' ? v.networkId : undefined;
  } catch {
    return undefined;
  }
}
