// Retried writes: every IPAM write whose answer is lost after it applied (as when etcd's leader
// dies after committing) is retried and recognised, never duplicated, never leaked.
import test from 'ava';
import { keys } from '../../store/keys.js';
import { Ipam } from '../../ipam/ipam.js';
import { IpamError } from '../../ipam/errors.js';
import { ownerForDocker } from '../../ipam/records.js';
import { type IpamTarget, env } from './behaviour.js';
import { FlakyStore } from './flaky-store.js';

const FAST = { attempts: 5, baseMs: 1, maxMs: 5 };

/** Register the retried-write tests for one backend. */
export function registerFaults(name: string, target: IpamTarget): void {
  test(`${name}: writes applied but reported failed are recognised on retry`, async (t) => {
    const { store } = await env(t, target);
    const flaky = new FlakyStore(store);
    const a = new Ipam(flaky, { hostId: 'A', retry: FAST });
    flaky.applyThenFail = 1;
    const p = await a.requestPool({ space: 'global', cidr: '10.90.0.0/24' });
    t.deepEqual((await a.listPools()).map((x) => x.refs.length), [1], 'one pool, one ref');
    flaky.applyThenFail = 1;
    const auto = await a.requestPool({ space: 'global' });
    t.is((await a.listPools('global')).length, 2, 'a retried auto request made one pool, not two');
    // The block claim and the address CAS both come back as failures after applying.
    flaky.applyThenFail = 2;
    const r1 = await a.requestAddress(p.poolId, { owner: ownerForDocker('x') });
    flaky.applyThenFail = 1;
    const r2 = await a.requestAddress(p.poolId);
    t.not(r1.address, r2.address);
    const all = await a.listAllocations(p.poolId);
    t.deepEqual(all.map((x) => x.address).sort(), [r1.address, r2.address].sort(), 'exactly what callers were told');
    t.is((await store.range(keys.ipamBlocks(p.poolId))).kvs.length, 1, 'one block claimed');
    // Not sent at all, then sent: also exactly once.
    flaky.failBefore = 2;
    const r3 = await a.requestAddress(p.poolId, { owner: ownerForDocker('y') });
    t.is((await a.listAllocations(p.poolId)).filter((x) => x.address === r3.address).length, 1);
    // Releases: the retried CAS finds the record gone and reports the release done.
    flaky.applyThenFail = 1;
    t.true(await a.releaseAddress(p.poolId, r2.address));
    flaky.applyThenFail = 1;
    t.deepEqual((await a.releaseOwner(ownerForDocker('x'))).map((f) => f.address), [r1.address]);
    t.is(await store.get(keys.ipamOwner(ownerForDocker('x'), p.poolId)), undefined);
    flaky.applyThenFail = 1;
    t.true(await a.releasePool(auto.poolId));
    t.is((await a.listPools()).length, 1);
  });

  test(`${name}: a store that stays down surfaces its retryable error unchanged`, async (t) => {
    const { store } = await env(t, target);
    const flaky = new FlakyStore(store);
    const a = new Ipam(flaky, { hostId: 'A', retry: FAST });
    const p = await a.requestPool({ space: 'local', cidr: '10.91.0.0/24' });
    flaky.failBefore = 100;
    const err = await t.throwsAsync(() => a.requestAddress(p.poolId));
    t.false(err instanceof IpamError);
    t.like(err, { name: 'StoreError', kind: 'unavailable', retryable: true });
    flaky.failBefore = 0;
    t.deepEqual(await a.listAllocations(p.poolId), []);
    t.is((await a.requestAddress(p.poolId)).address, '10.91.0.2');
  });
}
