// The IPAM behaviour suite, written once and registered per store backend (SQLite, etcd).
// Each test gets its own "world" (a fresh SQLite file, or its own etcd key prefix) and may
// open several stores on it to stand for several hosts or processes.
import test, { type ExecutionContext } from 'ava';
import { PREFIX } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { Ipam, type IpamOptions } from '../../ipam/ipam.js';
import { IpamError, type IpamErrorCode } from '../../ipam/errors.js';
import { ownerForCni, ownerForDocker } from '../../ipam/records.js';
import { registerFaults } from './behaviour-faults.js';
import { registerMultiHost } from './behaviour-multi.js';

/** A backend: each world() is an isolated, empty key space; open() adds a connection to it. */
export interface IpamTarget {
  world(): Promise<{ open(): Promise<Store> }>;
}

/** Helpers shared by the behaviour files. */
export async function env(t: ExecutionContext, target: IpamTarget) {
  const w = await target.world();
  const stores: Store[] = [];
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const open = async () => {
    const s = await w.open();
    stores.push(s);
    return s;
  };
  const store = await open();
  const ipam = (hostId = 'h1', opts: Partial<IpamOptions> = {}, s: Store = store) => new Ipam(s, { hostId, ...opts });
  return { store, open, ipam };
}

/** Every key and value under the project prefix (to prove a failed call wrote nothing). */
export async function dump(s: Store): Promise<string> {
  const r = await s.range(PREFIX);
  return JSON.stringify(r.kvs.map((kv) => [kv.key, kv.value, kv.modRevision]));
}

/** Assert an IpamError with code whose message names every `named` value, and that nothing was written. */
export async function refuses(t: ExecutionContext, s: Store, fn: () => Promise<unknown>, code: IpamErrorCode, ...named: string[]): Promise<void> {
  const before = await dump(s);
  const err = await t.throwsAsync(fn, { instanceOf: IpamError });
  t.is(err?.code, code, err?.message);
  for (const n of named) t.true(err?.message.includes(n), `"${err?.message}" should name ${n}`);
  t.is(await dump(s), before, 'the store is unchanged');
}

/** Register the behaviour tests for one backend. */
export function ipamBehaviour(name: string, target: IpamTarget): void {
  test(`${name}: default address spaces and explicit pools, shared by ref`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam();
    t.deepEqual(a.defaultAddressSpaces(), { local: 'local', global: 'global' });
    const p = await a.requestPool({ space: 'local', cidr: '172.18.0.0/16', ref: 'net1' });
    t.like(p, { poolId: 'local/172.18.0.0/16', cidr: '172.18.0.0/16', gateway: '172.18.0.1', v6: false, refs: ['net1'] });
    const again = await ipam('h2').requestPool({ space: 'local', cidr: '172.18.0.0/16', ref: 'net2' });
    t.is(again.poolId, p.poolId);
    t.deepEqual(again.refs, ['net1', 'net2']);
    t.deepEqual((await a.requestPool({ space: 'local', cidr: '172.18.0.0/16', ref: 'net1' })).refs, ['net1', 'net2'], 'a replayed ref is not counted twice');
    await a.requestAddress(p.poolId, { owner: ownerForDocker('ep1') });
    t.false(await a.releasePool(p.poolId, 'net1'));
    t.is((await a.listAllocations(p.poolId)).length, 1, 'a pool with refs left keeps its allocations');
    t.true(await a.releasePool(p.poolId, 'net2'));
    await refuses(t, store, () => a.getPool(p.poolId), 'unknown-pool', p.poolId);
    t.deepEqual(await a.listAllocations(), []);
    t.deepEqual((await store.range(`${PREFIX}ipam/owners/`)).kvs, [], 'owner index cleaned with the pool');
    // The same subnet in the other space is a different pool.
    t.is((await a.requestPool({ space: 'global', cidr: '172.18.0.0/16' })).poolId, 'global/172.18.0.0/16');
  });

  test(`${name}: auto pools are distinct while held, avoid host routes, and are reused after release`, async (t) => {
    const { ipam } = await env(t, target);
    const a = ipam('h1', { hostRoutes: async () => ['172.19.0.0/16', '0.0.0.0/0'] });
    const p1 = await a.requestPool({ space: 'local', ref: 'n1' });
    const p2 = await a.requestPool({ space: 'local', ref: 'n2' });
    const p3 = await a.requestPool({ space: 'local' });
    t.deepEqual([p1.cidr, p2.cidr, p3.cidr], ['172.17.0.0/16', '172.18.0.0/16', '172.20.0.0/16']);
    t.true(p1.auto);
    t.is((await a.requestPool({ space: 'local', ref: 'n1' })).poolId, p1.poolId, 'a replayed auto request gets its pool back');
    const g1 = await a.requestPool({ space: 'global' });
    const g2 = await a.requestPool({ space: 'global' });
    t.deepEqual([g1.cidr, g2.cidr], ['10.0.0.0/24', '10.0.1.0/24']);
    const v6 = await a.requestPool({ space: 'local', v6: true });
    t.like(v6, { cidr: 'fd17::/64', v6: true, gateway: 'fd17::1' });
    await a.releasePool(p2.poolId);
    t.is((await a.requestPool({ space: 'local' })).cidr, '172.18.0.0/16');
    // An explicit pool inside a default range pushes auto choices past it.
    await a.requestPool({ space: 'local', cidr: '172.21.128.0/17' });
    t.is((await a.requestPool({ space: 'local' })).cidr, '172.22.0.0/16');
    const few = ipam('h1', { defaultPools: { local: [{ base: '10.99.0.0/23', size: 24 }], global: [] } });
    await few.requestPool({ space: 'local' });
    await few.requestPool({ space: 'local' });
    await t.throwsAsync(() => few.requestPool({ space: 'local' }), { instanceOf: IpamError, message: /10\.99\.0\.0\/23/ });
  });

  test(`${name}: bad pool requests name the value and write nothing`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam();
    await a.requestPool({ space: 'local', cidr: '10.10.0.0/16' });
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.10.0.300/16' }), 'invalid-cidr', '10.10.0.300/16');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.20.0.0/16', gateway: '10.21.0.1' }), 'gateway-outside-subnet', '10.21.0.1');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.20.0.0/16', range: '10.30.0.0/24' }), 'range-outside-subnet', '10.30.0.0/24');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.10.5.0/24' }), 'pool-overlap', '10.10.5.0/24', 'local/10.10.0.0/16');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.0.0.0/8' }), 'pool-overlap', '10.0.0.0/8');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.10.0.0/16', range: '10.10.1.0/24' }), 'pool-overlap', '10.10.0.0/16');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.10.0.0/16', gateway: '10.10.0.9' }), 'pool-conflict', '10.10.0.9');
    await refuses(t, store, () => a.requestPool({ space: 'nowhere' as 'local', cidr: '10.40.0.0/16' }), 'unknown-address-space', 'nowhere');
    await refuses(t, store, () => a.requestPool({ space: 'local', cidr: '10.40.0.0/16', v6: true }), 'invalid-cidr', '10.40.0.0/16');
    await refuses(t, store, () => a.requestPool({ space: 'local', range: '10.40.0.0/24' }), 'invalid-request');
    await refuses(t, store, () => a.requestAddress('local/10.99.0.0/16'), 'unknown-pool', 'local/10.99.0.0/16');
    await refuses(t, store, () => a.releasePool('local/10.99.0.0/16'), 'unknown-pool', 'local/10.99.0.0/16');
  });

  test(`${name}: next free skips network, gateway and broadcast, round-robin after release`, async (t) => {
    const { ipam } = await env(t, target);
    const a = ipam();
    const p = await a.requestPool({ space: 'local', cidr: '192.168.7.0/29' });
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await a.requestAddress(p.poolId)).address);
    t.deepEqual(got, ['192.168.7.2', '192.168.7.3', '192.168.7.4', '192.168.7.5', '192.168.7.6']);
    t.true(await a.releaseAddress(p.poolId, '192.168.7.3'));
    t.false(await a.releaseAddress(p.poolId, '192.168.7.3'), 'releasing twice is a no-op');
    t.true(await a.releaseAddress(p.poolId, '192.168.7.5'));
    // Round-robin: the cursor is at .6, so .3 comes back before .5, and neither is taken at once… only after wrapping.
    t.like(await a.requestAddress(p.poolId), { address: '192.168.7.3', prefixLength: 29, cidr: '192.168.7.0/29', gateway: '192.168.7.1' });
    // A fresh instance (another CNI exec on the same host) resumes from the stored cursor.
    t.is((await ipam().requestAddress(p.poolId)).address, '192.168.7.5');
    const err = await t.throwsAsync(() => a.requestAddress(p.poolId), { instanceOf: IpamError });
    t.is(err?.code, 'pool-exhausted');
    t.regex(err!.message, /192\.168\.7\.0\/29/);
    // Round-robin with room to spare: a just-freed address is not reused at once.
    const q = await a.requestPool({ space: 'local', cidr: '192.168.8.0/24' });
    const first = (await a.requestAddress(q.poolId)).address;
    await a.releaseAddress(q.poolId, first);
    t.not((await a.requestAddress(q.poolId)).address, first);
  });

  test(`${name}: /31, /32 and IPv6 pools (RFC 3021, /127, /128)`, async (t) => {
    const { ipam } = await env(t, target);
    const a = ipam();
    const p31 = await a.requestPool({ space: 'local', cidr: '10.3.0.0/31' });
    t.is(p31.gateway, '10.3.0.0');
    t.is((await a.requestAddress(p31.poolId, { kind: 'gateway' })).address, '10.3.0.0');
    t.is((await a.requestAddress(p31.poolId)).address, '10.3.0.1');
    const p32 = await a.requestPool({ space: 'local', cidr: '10.3.0.9/32' });
    t.is(p32.gateway, null);
    t.is((await a.requestAddress(p32.poolId)).address, '10.3.0.9');
    await t.throwsAsync(() => a.requestAddress(p32.poolId), { instanceOf: IpamError, message: /exhausted/ });
    const v6 = await a.requestPool({ space: 'global', cidr: 'fd00:aa::/64', v6: true });
    t.like(await a.requestAddress(v6.poolId), { address: 'fd00:aa::2', prefixLength: 64, gateway: 'fd00:aa::1' });
    t.like(await a.requestAddress(v6.poolId, { address: 'FD00:AA:0::ffff' }), { address: 'fd00:aa::ffff' });
    const p127 = await a.requestPool({ space: 'local', cidr: 'fd00:bb::/127' });
    t.is((await a.requestAddress(p127.poolId)).address, 'fd00:bb::1');
    const p128 = await a.requestPool({ space: 'local', cidr: 'fd00:cc::5/128' });
    t.is((await a.requestAddress(p128.poolId)).address, 'fd00:cc::5');
  });

  test(`${name}: sub-pool ranges (Docker --ip-range, CNI rangeStart/rangeEnd)`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam();
    const p = await a.requestPool({ space: 'local', cidr: '10.5.0.0/16', range: '10.5.3.0/30' });
    t.is(p.poolId, 'local/10.5.0.0/16/10.5.3.0-10.5.3.3');
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await a.requestAddress(p.poolId)).address);
    t.deepEqual(got, ['10.5.3.0', '10.5.3.1', '10.5.3.2', '10.5.3.3']);
    await refuses(t, store, () => a.requestAddress(p.poolId), 'pool-exhausted', p.poolId);
    // Docker: --ip may lie outside --ip-range but inside the subnet; CNI asks for the range.
    t.is((await a.requestAddress(p.poolId, { address: '10.5.9.9' })).address, '10.5.9.9');
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.5.9.10', inRange: true }), 'address-outside-pool', '10.5.9.10');
    const c = await a.requestPool({ space: 'local', cidr: '10.6.0.0/24', range: { start: '10.6.0.10', end: '10.6.0.11' }, gateway: '10.6.0.254' });
    t.is(c.gateway, '10.6.0.254');
    t.is((await a.requestAddress(c.poolId)).address, '10.6.0.10');
  });

  test(`${name}: requested addresses, owners and idempotent ADD`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam();
    const p = await a.requestPool({ space: 'local', cidr: '10.7.0.0/24', reserved: ['10.7.0.2'] });
    const cni = ownerForCni('net1', 'c0ffee', 'eth0');
    t.is(cni, 'cni:net1:c0ffee:eth0');
    const r1 = await a.requestAddress(p.poolId, { owner: cni });
    t.is(r1.address, '10.7.0.3', 'the reserved address is skipped');
    t.is((await ipam('h2').requestAddress(p.poolId, { owner: cni })).address, r1.address, 'same owner, same address, from anywhere');
    t.is((await a.requestAddress(p.poolId, { owner: cni, address: '10.7.0.3' })).address, '10.7.0.3');
    await refuses(t, store, () => a.requestAddress(p.poolId, { owner: cni, address: '10.7.0.50' }), 'owner-conflict', cni, '10.7.0.3', '10.7.0.50');
    const ep = ownerForDocker('e1');
    t.is((await a.requestAddress(p.poolId, { owner: ep, address: '10.7.0.50' })).address, '10.7.0.50');
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.7.0.50' }), 'address-taken', '10.7.0.50', ep);
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.8.0.1' }), 'address-outside-pool', '10.8.0.1', p.poolId);
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.7.0.1' }), 'address-reserved', '10.7.0.1');
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.7.0.255' }), 'address-reserved', '10.7.0.255');
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.7.0.2' }), 'address-reserved', '10.7.0.2');
    await refuses(t, store, () => a.requestAddress(p.poolId, { address: '10.7.0.x' }), 'invalid-address', '10.7.0.x');
    await refuses(t, store, () => a.requestAddress(p.poolId, { owner: '' }), 'invalid-owner');
    // A dual-stack owner: one address per pool, released together.
    const p6 = await a.requestPool({ space: 'local', cidr: 'fd00:7::/120' });
    await a.requestAddress(p6.poolId, { owner: cni });
    t.deepEqual((await a.allocationsOf(cni)).map((x) => [x.poolId, x.address]).sort(), [[p.poolId, '10.7.0.3'], [p6.poolId, 'fd00:7::2']].sort());
    const freed = await a.releaseOwner(cni);
    t.deepEqual(freed.map((f) => f.address).sort(), ['10.7.0.3', 'fd00:7::2']);
    t.deepEqual(await a.releaseOwner(cni), []);
    t.deepEqual(await a.allocationsOf(cni), []);
    const left = await a.listAllocations();
    t.deepEqual(left.map((x) => x.address), ['10.7.0.50']);
    t.like(left[0], { poolId: p.poolId, owner: ep, host: 'h1', kind: 'endpoint' });
  });

  test(`${name}: gateways are shared by every host; Docker's --gateway replaces the default`, async (t) => {
    const { ipam, store } = await env(t, target);
    const hosts = ['A', 'B', 'C'].map((h) => ipam(h));
    const p = await hosts[0]!.requestPool({ space: 'global', cidr: '10.50.0.0/24' });
    const gws = await Promise.all(hosts.map((h) => h.requestAddress(p.poolId, { kind: 'gateway' })));
    t.deepEqual(gws.map((g) => g.address), ['10.50.0.1', '10.50.0.1', '10.50.0.1']);
    t.is((await hosts[1]!.requestAddress(p.poolId, { kind: 'gateway', address: '10.50.0.1' })).address, '10.50.0.1', 'a replay succeeds');
    t.is((await hosts[0]!.listAllocations(p.poolId)).length, 1);
    await refuses(t, store, () => hosts[0]!.requestAddress(p.poolId, { kind: 'gateway', address: '10.51.0.1' }), 'gateway-outside-subnet', '10.51.0.1');
    // Docker: RequestPool without a gateway, then RequestAddress(gateway, --gateway value).
    const d = await hosts[0]!.requestPool({ space: 'local', cidr: '10.60.0.0/29' });
    t.is((await hosts[0]!.requestAddress(d.poolId, { kind: 'gateway', address: '10.60.0.6' })).address, '10.60.0.6');
    t.is((await hosts[0]!.getPool(d.poolId)).gateway, '10.60.0.6');
    t.is((await hosts[0]!.requestAddress(d.poolId)).address, '10.60.0.1', 'the old default gateway is free again');
    await refuses(t, store, () => hosts[0]!.requestAddress(d.poolId, { kind: 'gateway', address: '10.60.0.1' }), 'address-taken', '10.60.0.1');
    // Aux addresses (Docker --aux-address): held, never handed out, replay-safe.
    t.is((await hosts[0]!.requestAddress(d.poolId, { kind: 'aux', address: '10.60.0.3' })).kind, 'aux');
    t.is((await hosts[1]!.requestAddress(d.poolId, { kind: 'aux', address: '10.60.0.3' })).address, '10.60.0.3');
    t.is((await hosts[0]!.requestAddress(d.poolId)).address, '10.60.0.2');
    t.is((await hosts[0]!.requestAddress(d.poolId)).address, '10.60.0.4');
    t.true(await hosts[2]!.releaseAddress(d.poolId, '10.60.0.6'));
  });

  test(`${name}: allocations record owner, host and time`, async (t) => {
    const { ipam } = await env(t, target);
    const a = ipam('host-a', { clock: () => Date.UTC(2024, 0, 2, 3, 4, 5) });
    const p = await a.requestPool({ space: 'local', cidr: '10.9.0.0/24' });
    await a.requestAddress(p.poolId, { owner: ownerForDocker('abc') });
    t.deepEqual(await a.listAllocations(p.poolId), [
      { address: '10.9.0.2', poolId: p.poolId, owner: 'docker:abc', host: 'host-a', time: '2024-01-02T03:04:05.000Z', kind: 'endpoint' },
    ]);
  });

  test(`${name}: concurrent requests of one owner get one address; a re-created pool is seen by cached allocators`, async (t) => {
    const { ipam, store } = await env(t, target);
    const a = ipam();
    const p = await a.requestPool({ space: 'local', cidr: '10.11.0.0/24', ref: 'r' });
    const o = ownerForDocker('twice');
    const both = await Promise.all([a.requestAddress(p.poolId, { owner: o }), a.requestAddress(p.poolId, { owner: o }), a.requestAddress(p.poolId)]);
    t.is(both[0].address, both[1].address);
    t.not(both[2].address, both[0].address);
    t.is((await a.listAllocations(p.poolId)).length, 2);
    // Another host deletes and re-creates the pool: this instance's cached allocator must notice.
    t.true(await ipam('h2').releasePool(p.poolId, 'r'));
    const q = await ipam('h2').requestPool({ space: 'local', cidr: '10.11.0.0/24', ref: 'r2' });
    t.is(q.poolId, p.poolId);
    t.like(await a.requestAddress(q.poolId, { owner: o }), { address: '10.11.0.2' });
    t.is((await a.listAllocations(q.poolId)).length, 1, 'nothing of the old pool survived');
    t.true(await ipam('h2').releasePool(q.poolId, 'r2'));
    await refuses(t, store, () => a.requestAddress(p.poolId, { owner: o }), 'unknown-pool', p.poolId);
  });

  registerMultiHost(name, target);
  registerFaults(name, target);
}
