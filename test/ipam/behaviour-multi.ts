// Multi-host behaviour of the IPAM suite: block affinity, borrowing, racing for the last
// addresses, concurrent workers, GC after a crash. Each "host" has its own store connection.
import test from 'ava';
import { keys } from '../../store/keys.js';
import { IpamError } from '../../ipam/errors.js';
import { ownerForCni, ownerForDocker } from '../../ipam/records.js';
import { type IpamTarget, env } from './behaviour.js';

/** Register the multi-host tests for one backend. */
export function registerMultiHost(name: string, target: IpamTarget): void {
  test(`${name}: hosts allocate in their own blocks and borrow when no block is free`, async (t) => {
    const { ipam, open, store } = await env(t, target);
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map(async (h) => ipam(h, {}, await open())));
    const p = await a!.requestPool({ space: 'global', cidr: '10.20.0.0/25' });
    t.is(p.blockPrefix, 26);
    const fromA = [await a!.requestAddress(p.poolId), await a!.requestAddress(p.poolId)].map((r) => r.address);
    const fromB = [await b!.requestAddress(p.poolId), await b!.requestAddress(p.poolId)].map((r) => r.address);
    const blockOf = (addr: string) => (Number(addr.split('.')[3]) < 64 ? '10.20.0.0/26' : '10.20.0.64/26');
    t.is(new Set(fromA.map(blockOf)).size, 1);
    t.is(new Set(fromB.map(blockOf)).size, 1);
    t.not(blockOf(fromA[0]!), blockOf(fromB[0]!), 'A and B hold different blocks');
    const blocks = await store.range(keys.ipamBlocks(p.poolId));
    t.deepEqual(blocks.kvs.map((kv) => JSON.parse(kv.value).host).sort(), ['A', 'B']);
    // C finds no unclaimed block: it borrows from A's or B's, never duplicating.
    const fromC = (await c!.requestAddress(p.poolId)).address;
    t.false([...fromA, ...fromB].includes(fromC));
    t.is((await store.range(keys.ipamBlocks(p.poolId))).kvs.length, 2, 'C claimed no block');
    const all = await a!.listAllocations(p.poolId);
    t.like(all.find((x) => x.address === fromC), { host: 'C' });
  });

  test(`${name}: 3 hosts racing for the last free addresses: no duplicate, losers get pool-exhausted`, async (t) => {
    const { ipam, open } = await env(t, target);
    const hosts = await Promise.all(['A', 'B', 'C'].map(async (h) => ipam(h, {}, await open())));
    const p = await hosts[0]!.requestPool({ space: 'global', cidr: '10.30.0.0/29' });
    await hosts[0]!.requestAddress(p.poolId, { kind: 'gateway' });
    await hosts[0]!.requestAddress(p.poolId);
    await hosts[1]!.requestAddress(p.poolId);
    // 3 handouts left (.4 .5 .6); 12 concurrent requests from 3 hosts.
    const tries = hosts.flatMap((h, i) => Array.from({ length: 4 }, (_, j) => h.requestAddress(p.poolId, { owner: ownerForDocker(`e${i}-${j}`) })));
    const results = await Promise.allSettled(tries);
    const won = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ address: string }>).value.address);
    const lost = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    t.deepEqual([...won].sort(), ['10.30.0.4', '10.30.0.5', '10.30.0.6']);
    t.is(lost.length, 9);
    for (const e of lost) {
      t.true(e instanceof IpamError, String(e));
      t.is((e as IpamError).code, 'pool-exhausted', (e as Error).message);
    }
    const stored = await hosts[2]!.listAllocations(p.poolId);
    t.is(stored.length, 6);
    t.is(new Set(stored.map((s) => s.address)).size, 6);
  });

  test(`${name}: concurrent workers on several hosts never get the same address`, async (t) => {
    const { ipam, open } = await env(t, target);
    const hosts = await Promise.all(['A', 'B', 'C'].map(async (h) => ipam(h, {}, await open())));
    const p = await hosts[0]!.requestPool({ space: 'global', cidr: '10.40.0.0/22' });
    const told: string[] = [];
    await Promise.all(
      hosts.flatMap((h, hi) =>
        Array.from({ length: 8 }, async (_, w) => {
          for (let k = 0; k < 10; k++) told.push((await h.requestAddress(p.poolId, { owner: ownerForCni('n', `c${hi}x${w}x${k}`, 'eth0') })).address);
        }),
      ),
    );
    t.is(told.length, 240);
    t.is(new Set(told).size, 240, 'no duplicates');
    const stored = await hosts[1]!.listAllocations(p.poolId);
    t.deepEqual(stored.map((s) => s.address).sort(), [...told].sort(), 'the store holds exactly what callers were told');
  });

  test(`${name}: GC after a crash frees addresses whose owners are gone and dead hosts' blocks`, async (t) => {
    const { ipam, open, store } = await env(t, target);
    const crashed = await open();
    const a = ipam('A', {}, crashed);
    const p = await a.requestPool({ space: 'global', cidr: '10.70.0.0/24' });
    await a.requestAddress(p.poolId, { kind: 'gateway' });
    const owners = ['c1', 'c2', 'c3'].map((c) => ownerForCni('net', c, 'eth0'));
    for (const o of owners) await a.requestAddress(p.poolId, { owner: o });
    await a.requestAddress(p.poolId, { owner: ownerForDocker('d1') });
    await crashed.close(); // host A dies without releasing anything
    const b = ipam('B');
    // A stale owner index entry (its address long gone) is cleaned too.
    await store.put(keys.ipamOwner('cni:net:zz:eth0', p.poolId), JSON.stringify({ address: '10.70.0.200', block: '10.70.0.192/26', req: 'x' }));
    const valid = new Set([owners[0], ownerForDocker('d1')]);
    const freed = await b.gc({ isOwnerValid: (o) => valid.has(o) });
    t.deepEqual(freed.map((f) => f.owner).sort(), [owners[1], owners[2]].sort());
    t.is(await store.get(keys.ipamOwner('cni:net:zz:eth0', p.poolId)), undefined);
    t.deepEqual((await b.gc({ isOwnerValid: (o) => valid.has(o) })).length, 0, 'GC is idempotent');
    // Host A's lease expired: its endpoint allocations and block affinity go; the gateway stays.
    const dead = await b.gc({ isOwnerValid: async () => true, deadHosts: ['A'] });
    t.deepEqual(dead.map((f) => f.owner).sort(), [owners[0], 'docker:d1'].sort());
    t.deepEqual((await b.listAllocations(p.poolId)).map((x) => x.kind), ['gateway']);
    t.deepEqual((await store.range(keys.ipamBlocks(p.poolId))).kvs, []);
    const again = await b.requestAddress(p.poolId, { owner: owners[1], address: freed[0]!.address });
    t.is(again.address, freed[0]!.address, 'freed addresses are allocatable again');
    t.like((await b.listAllocations(p.poolId)).find((x) => x.address === again.address), { host: 'B', owner: owners[1] });
    t.is((await b.requestAddress(p.poolId)).address, '10.70.0.2', 'B claims the block A no longer holds');
  });

  test(`${name}: GC frees the allocations of a host whose registry lease expired`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam('A');
    const b = ipam('B');
    const leaseA = await store.lease(30);
    await store.put(keys.host('A'), '{}', { lease: leaseA.id });
    await store.put(keys.host('B'), '{}');
    const p = await a.requestPool({ space: 'global', cidr: '10.71.0.0/24' });
    const ra = await a.requestAddress(p.poolId, { owner: ownerForDocker('on-a') });
    const rb = await b.requestAddress(p.poolId, { owner: ownerForDocker('on-b') });
    t.deepEqual(await b.gc({ isOwnerValid: () => true, hostsFromRegistry: true }), [], 'both hosts alive');
    await leaseA.revoke(); // host A's lease is gone, as after a crash and expiry
    const freed = await b.gc({ isOwnerValid: () => true, hostsFromRegistry: true });
    t.deepEqual(freed.map((f) => f.address), [ra.address]);
    t.deepEqual((await b.listAllocations(p.poolId)).map((x) => x.address), [rb.address]);
    t.deepEqual((await store.range(keys.ipamBlocks(p.poolId))).kvs.map((kv) => JSON.parse(kv.value).host), ['B']);
  });

  test(`${name}: hosts racing to create pools: identical requests share one, overlapping ones lose cleanly`, async (t) => {
    const { ipam, open } = await env(t, target);
    const hosts = await Promise.all(['A', 'B', 'C', 'D'].map(async (h) => ipam(h, {}, await open())));
    const same = await Promise.all(hosts.map((h) => h.requestPool({ space: 'global', cidr: '10.80.0.0/16', ref: `net-${h === hosts[0] ? 'a' : 'x'}` })));
    t.is(new Set(same.map((p) => p.poolId)).size, 1);
    t.deepEqual([...(await hosts[0]!.getPool(same[0]!.poolId)).refs].sort(), ['net-a', 'net-x']);
    const racing = await Promise.allSettled(['10.81.0.0/16', '10.81.0.0/17', '10.81.0.0/24', '10.81.0.0/18'].map((cidr, i) => hosts[i]!.requestPool({ space: 'global', cidr })));
    const won = racing.filter((r) => r.status === 'fulfilled');
    t.is(won.length, 1, 'exactly one of four overlapping pools is created');
    for (const r of racing) if (r.status === 'rejected') t.is((r.reason as IpamError).code, 'pool-overlap');
    const autos = await Promise.all(hosts.map((h) => h.requestPool({ space: 'global' })));
    t.is(new Set(autos.map((p) => p.cidr)).size, 4, 'concurrent auto requests get different pools');
  });
}
