// The store conformance suite: one set of AVA tests every backend must pass. Each test
// works under its own key prefix so all tests of a file can share one backend.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { StoreError } from '../../store/errors.js';
import type { Store, WatchEvent } from '../../store/types.js';
import { registerExtraConformance } from './conformance-extra.js';

/** A backend under test. */
export interface ConformanceTarget {
  /** Store URL of the backend (shared by all tests). */
  url(): Promise<string>;
  /** Open a new client connection to url. */
  open(url: string): Promise<Store>;
  /** Keys written by the large-range test (100k for SQLite). */
  bigRange: number;
  /** Upper bound for one range() over bigRange keys, in ms. */
  bigRangeMaxMs: number;
  /** Ops per txn the backend accepts (etcd default: 128). */
  maxTxnOps: number;
  /** Number of child processes and increments each in the multi-process CAS test. */
  casWorkers: number;
  casIncrements: number;
}

/** A unique key prefix per test. */
export function uniquePrefix(tag: string): string {
  return `/tsoverlay/v1/conformance/${tag}-${randomBytes(4).toString('hex')}/`;
}

/** Open a store that the test closes in teardown. */
export async function openFor(t: { teardown(fn: () => unknown): void }, target: ConformanceTarget): Promise<Store> {
  const s = await target.open(await target.url());
  t.teardown(() => s.close());
  return s;
}

/** Resolve once pred(events) holds, or reject after ms. */
export async function waitFor(events: WatchEvent[], pred: (evs: WatchEvent[]) => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred(events)) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(events.map((e) => [e.type, e.key, e.revision]))}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Register the conformance tests for one backend. */
export function storeConformance(name: string, target: ConformanceTarget): void {
  test(`${name}: put, get and per-key revisions`, async (t) => {
    const s = await openFor(t, target);
    const p = uniquePrefix('kv');
    t.is(await s.get(`${p}a`), undefined);
    const r1 = await s.put(`${p}a`, 'one');
    const kv1 = await s.get(`${p}a`);
    t.like(kv1, { key: `${p}a`, value: 'one', createRevision: r1, modRevision: r1, version: 1 });
    const r2 = await s.put(`${p}a`, 'two');
    t.true(r2 > r1);
    t.like(await s.get(`${p}a`), { value: 'two', createRevision: r1, modRevision: r2, version: 2 });
    t.is(await s.revision() >= r2, true);
    t.true(await s.delete(`${p}a`));
    t.false(await s.delete(`${p}a`));
    t.is(await s.get(`${p}a`), undefined);
    const r3 = await s.put(`${p}a`, 'again');
    t.like(await s.get(`${p}a`), { createRevision: r3, version: 1 });
  });

  test(`${name}: range returns the prefix in key order, with limit and revision`, async (t) => {
    const s = await openFor(t, target);
    const p = uniquePrefix('range');
    for (const k of ['b', 'a', 'c/x', 'c/y', 'é']) await s.put(`${p}${k}`, k);
    await s.put(`${p.slice(0, -1)}-sibling`, 'no');
    const all = await s.range(p);
    t.deepEqual(all.kvs.map((kv) => kv.key.slice(p.length)), ['a', 'b', 'c/x', 'c/y', 'é']);
    t.true(all.revision >= Math.max(...all.kvs.map((kv) => kv.modRevision)));
    t.deepEqual((await s.range(`${p}c/`)).kvs.map((kv) => kv.value), ['x', 'y'].map((v) => `c/${v}`));
    t.deepEqual((await s.range(p, { limit: 2 })).kvs.map((kv) => kv.value), ['a', 'b']);
    t.deepEqual((await s.range(`${p}zz`)).kvs, []);
  });

  test(`${name}: txn applies success or failure ops atomically`, async (t) => {
    const s = await openFor(t, target);
    const p = uniquePrefix('txn');
    const absent = { key: `${p}lock`, target: 'createRevision' as const, op: '==' as const, value: 0 };
    const first = await s.txn([absent], [{ type: 'put', key: `${p}lock`, value: 'A' }, { type: 'put', key: `${p}owner`, value: 'A' }]);
    t.true(first.succeeded);
    const second = await s.txn([absent], [{ type: 'put', key: `${p}lock`, value: 'B' }], [{ type: 'put', key: `${p}lost`, value: 'B' }]);
    t.false(second.succeeded);
    t.true(second.revision > first.revision, 'the failure ops were written');
    t.is((await s.get(`${p}lock`))?.value, 'A');
    t.is((await s.get(`${p}lost`))?.value, 'B');
    const lock = (await s.get(`${p}lock`))!;
    const stale = await s.txn([{ key: `${p}lock`, target: 'modRevision', op: '==', value: lock.modRevision - 1 }], [{ type: 'delete', key: `${p}lock` }]);
    t.false(stale.succeeded);
    t.like(await s.get(`${p}lock`), { modRevision: lock.modRevision, version: lock.version }, 'nothing written');
    t.true((await s.txn([{ key: `${p}lock`, target: 'value', op: '==', value: 'A' }, { key: `${p}lock`, target: 'version', op: '>', value: 0 }], [{ type: 'delete', key: `${p}lock` }])).succeeded);
    t.false((await s.txn([{ key: `${p}lock`, target: 'value', op: '!=', value: 'zzz' }], [])).succeeded, 'value compare on a missing key fails');
    await s.txn([], [{ type: 'deletePrefix', prefix: p }]);
    t.deepEqual((await s.range(p)).kvs, []);
  });

  test(`${name}: bad input is a non-retryable bad-request`, async (t) => {
    const s = await openFor(t, target);
    const err = await t.throwsAsync(s.put('', 'x'), { instanceOf: StoreError });
    t.like(err, { code: 'bad-request', kind: 'bad-request', retryable: false });
    await t.throwsAsync(s.lease(0), { instanceOf: StoreError });
    t.like(await t.throwsAsync(s.put(`${uniquePrefix('bad')}k`, 'v', { lease: '987654321' }), { instanceOf: StoreError }), { code: 'lease-lost' });
    const p = uniquePrefix('bad');
    const dup = await t.throwsAsync(s.txn([], [{ type: 'put', key: `${p}a`, value: '1' }, { type: 'put', key: `${p}a`, value: '2' }]), { instanceOf: StoreError });
    t.is(dup?.code, 'bad-request', 'a key put twice in one txn');
    const putDel = await t.throwsAsync(s.txn([], [{ type: 'put', key: `${p}a`, value: '1' }, { type: 'deletePrefix', prefix: p }]), { instanceOf: StoreError });
    t.is(putDel?.code, 'bad-request', 'a key put and deleted in one txn');
    const many = Array.from({ length: 129 }, (_, i) => ({ type: 'put' as const, key: `${p}${i}`, value: '' }));
    t.is((await t.throwsAsync(s.txn([], many), { instanceOf: StoreError }))?.code, 'bad-request', '129 ops');
    t.deepEqual((await s.range(p)).kvs, [], 'nothing written');
  });

  test(`${name}: watch delivers every change under the prefix, in order, once`, async (t) => {
    const s = await openFor(t, target);
    const writer = await openFor(t, target);
    const p = uniquePrefix('watch');
    const events: WatchEvent[] = [];
    const w = await s.watch(p, (ev) => events.push(ev));
    t.teardown(() => w.cancel());
    await writer.put(`${p}a`, '1');
    await writer.put(`${p.slice(0, -1)}x`, 'outside');
    await writer.put(`${p}b`, '2');
    await writer.put(`${p}a`, '3');
    await writer.delete(`${p}b`);
    await writer.txn([], [{ type: 'put', key: `${p}c`, value: '4' }, { type: 'put', key: `${p}d`, value: '5' }]);
    await waitFor(events, (e) => e.length >= 6, 5000, 'six events');
    await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(events.map((e) => [e.type, e.key.slice(p.length), e.value]), [
      ['put', 'a', '1'], ['put', 'b', '2'], ['put', 'a', '3'], ['delete', 'b', ''], ['put', 'c', '4'], ['put', 'd', '5'],
    ]);
    const revs = events.map((e) => e.revision);
    t.deepEqual([...revs].sort((x, y) => x - y), revs, 'revision order');
    t.is(revs[4], revs[5], 'one txn = one revision');
    const before = events.length;
    await w.cancel();
    await writer.put(`${p}a`, 'after-cancel');
    await new Promise((r) => setTimeout(r, 150));
    t.is(events.length, before, 'nothing after cancel');
  });

  test(`${name}: watch from a past revision replays history, then continues`, async (t) => {
    const s = await openFor(t, target);
    const p = uniquePrefix('replay');
    const r1 = await s.put(`${p}k`, 'v1');
    await s.put(`${p}k`, 'v2');
    await s.delete(`${p}k`);
    const events: WatchEvent[] = [];
    const w = await s.watch(p, (ev) => events.push(ev), { fromRevision: r1 });
    t.teardown(() => w.cancel());
    await s.put(`${p}k`, 'v3');
    await waitFor(events, (e) => e.length >= 4, 5000, 'four events');
    t.deepEqual(events.map((e) => `${e.type}:${e.value}`), ['put:v1', 'put:v2', 'delete:', 'put:v3']);
    t.is(events[0]!.revision, r1);
  });

  // Lease timing tests run serially (before the concurrent ones): a busy event loop or a store
  // lock held by the multi-process tests must not eat into a 1–2 s TTL.
  test.serial(`${name}: lease keep-alive holds keys, revoke removes them`, async (t) => {
    const s = await openFor(t, target);
    const p = uniquePrefix('lease');
    const lease = await s.lease(2);
    t.regex(lease.id, /^[1-9][0-9]*$/);
    lease.keepAlive();
    let lost: Error | undefined;
    lease.onLost((e) => (lost = e));
    await s.put(`${p}a`, 'x', { lease: lease.id });
    await s.txn([], [{ type: 'put', key: `${p}b`, value: 'y', lease: lease.id }]);
    t.is((await s.get(`${p}a`))?.lease, lease.id);
    await new Promise((r) => setTimeout(r, 3000));
    t.is((await s.range(p)).kvs.length, 2, 'kept past its ttl');
    t.is(lost, undefined);
    await lease.revoke();
    t.deepEqual((await s.range(p)).kvs, []);
  });

  test.serial(`${name}: an expired lease removes its keys and the watch sees the deletes`, async (t) => {
    const s = await openFor(t, target);
    const watcher = await openFor(t, target);
    const p = uniquePrefix('expire');
    const lease = await s.lease(1);
    await s.put(`${p}a`, 'x', { lease: lease.id });
    await s.put(`${p}b`, 'y', { lease: lease.id });
    await s.put(`${p}keep`, 'z');
    const events: WatchEvent[] = [];
    const w = await watcher.watch(p, (ev) => events.push(ev));
    t.teardown(() => w.cancel());
    await waitFor(events, (e) => e.filter((x) => x.type === 'delete').length >= 2, 8000, 'two deletes');
    t.deepEqual(events.map((e) => `${e.type}:${e.key.slice(p.length)}`).sort(), ['delete:a', 'delete:b']);
    t.deepEqual((await s.range(p)).kvs.map((kv) => kv.key.slice(p.length)), ['keep']);
    await t.throwsAsync(s.put(`${p}c`, 'late', { lease: lease.id }), { instanceOf: StoreError });
  });

  registerExtraConformance(name, target);
}
