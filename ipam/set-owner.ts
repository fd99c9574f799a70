// Giving an allocation made without an owner its owner afterwards (Docker: RequestAddress
// carries no endpoint id; the network driver learns it at CreateEndpoint), so GC by owner works.
import { keys } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { IpamError } from './errors.js';
import { type AddressRecord, type OwnerRecord, absent, decode, unchanged } from './records.js';

const ATTEMPTS = 8;

/**
 * Set the owner of the address record at `key` (pool `poolId`) and add the owner index entry,
 * in one compare-and-swap. Resolves false when the address is not allocated; true when it now
 * belongs to owner (already did included). 'owner-conflict' when another owner holds it, or
 * when owner already holds another address of the pool.
 */
export async function setAllocationOwner(store: Store, poolId: string, key: string, owner: string): Promise<boolean> {
  const ownerKey = keys.ipamOwner(owner, poolId);
  for (let i = 0; i < ATTEMPTS; i++) {
    const kv = await store.get(key);
    if (!kv) return false;
    const rec = decode<AddressRecord>(kv);
    if (rec.owner === owner) return true;
    if (rec.owner !== null) {
      throw new IpamError('owner-conflict', `address ${rec.address} in pool ${poolId} belongs to ${rec.owner}, not ${owner}`);
    }
    const held = await store.get(ownerKey);
    if (held) {
      const o = decode<OwnerRecord>(held);
      const live = await store.get(keys.ipamBlockAddress(poolId, o.block, o.address));
      if (live && decode<AddressRecord>(live).req === o.req) {
        throw new IpamError('owner-conflict', `owner ${owner} already holds ${o.address} in pool ${poolId}, not ${rec.address}`);
      }
      // A stale index entry (its address was freed): drop it and try again.
      await store.txn([unchanged(ownerKey, held.modRevision)], [{ type: 'delete', key: ownerKey }]);
      continue;
    }
    const index: OwnerRecord = { address: rec.address, block: rec.block, req: rec.req };
    const r = await store.txn(
      [unchanged(key, kv.modRevision), absent(ownerKey)],
      [
        { type: 'put', key, value: JSON.stringify({ ...rec, owner } satisfies AddressRecord) },
        { type: 'put', key: ownerKey, value: JSON.stringify(index) },
      ],
    );
    if (r.succeeded) return true;
  }
  throw new IpamError('contention', `gave up setting the owner of ${key} after ${ATTEMPTS} conflicting attempts; retry`);
}
