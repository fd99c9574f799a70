// The tsipam adapter (IpamBackend over Ipam) on the embedded store, without an engine: the
// refs Docker's calls take and drop, gateways, requested addresses, and errors with their kind.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../ipam/index.js';
import { DockerIpam } from '../../plugins/libnetwork/adapters/ipam.js';
import type { RequestContext } from '../../plugins/libnetwork/backend.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'tsot-ipad-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const nolog = { debug() {}, info() {}, warn() {}, error() {} };
const ctx: RequestContext = { requestId: '00000000', plugin: 'tsipam', log: nolog };
const noOpts = { extra: {} };

async function world(t: import('ava').ExecutionContext) {
  const store: Store = await openStore(`sqlite://${join(dir, `w${n++}.db`)}`);
  t.teardown(() => store.close());
  const ipam = (hostId: string) => new Ipam(store, { hostId });
  const docker = (hostId: string) => new DockerIpam({ ipam: ipam(hostId), hostId });
  return { store, ipam, docker };
}

test('a network create and rm: pool, gateway, aux, endpoint, then everything released', async (t) => {
  const { docker, ipam } = await world(t);
  const d = docker('h1');
  t.deepEqual(await d.getDefaultAddressSpaces(), { local: 'local', global: 'global' });
  const pool = await d.requestPool({ addressSpace: 'local', pool: '10.30.0.0/24', subPool: '10.30.0.128/25', options: noOpts, v6: false }, ctx);
  t.deepEqual(pool, { poolId: 'local/10.30.0.0/24/10.30.0.128-10.30.0.254', pool: '10.30.0.0/24' });
  const gw = await d.requestAddress({ poolId: pool.poolId, address: '10.30.0.254', options: { type: 'gateway', extra: {} } }, ctx);
  t.is(gw.address, '10.30.0.254/24');
  // A replayed gateway request (RequestReplay, or another host's engine) succeeds.
  t.is((await d.requestAddress({ poolId: pool.poolId, address: '10.30.0.254', options: { type: 'gateway', extra: {} } }, ctx)).address, '10.30.0.254/24');
  t.is((await d.requestAddress({ poolId: pool.poolId, address: '10.30.0.5', options: noOpts }, ctx)).address, '10.30.0.5/24', 'aux outside the range');
  const ep = await d.requestAddress({ poolId: pool.poolId, options: noOpts }, ctx);
  t.is(ep.address, '10.30.0.128/24', 'first of the range');
  const fixed = await d.requestAddress({ poolId: pool.poolId, address: '10.30.0.9', options: noOpts }, ctx);
  t.is(fixed.address, '10.30.0.9/24', '--ip may lie outside --ip-range (Docker semantics)');
  const taken = await t.throwsAsync(d.requestAddress({ poolId: pool.poolId, address: '10.30.0.9', options: noOpts }, ctx));
  t.like(taken, { kind: 'conflict', code: 'address-taken' });
  t.regex(taken!.message, /10\.30\.0\.9/);
  const outside = await t.throwsAsync(d.requestAddress({ poolId: pool.poolId, address: '10.31.0.9', options: noOpts }, ctx));
  t.like(outside, { kind: 'bad-request', code: 'address-outside-pool' });
  await d.releaseAddress({ poolId: pool.poolId, address: '10.30.0.9' }, ctx);
  await d.releaseAddress({ poolId: pool.poolId, address: '10.30.0.9' }, ctx); // idempotent
  await d.releaseAddress({ poolId: pool.poolId, address: '10.30.0.128' }, ctx);
  await d.releaseAddress({ poolId: pool.poolId, address: '10.30.0.5' }, ctx);
  await d.releaseAddress({ poolId: pool.poolId, address: '10.30.0.254' }, ctx);
  t.deepEqual(await ipam('h1').listAllocations(), []);
  await d.releasePool({ poolId: pool.poolId }, ctx);
  t.deepEqual(await ipam('h1').listPools(), []);
  const gone = await t.throwsAsync(d.releasePool({ poolId: pool.poolId }, ctx));
  t.is((gone as { kind?: string }).kind, 'not-found', 'a released pool is not-found (answered as success by the server)');
});

test('one subnet from two hosts shares one pool; each host drops only its own ref', async (t) => {
  const { docker, ipam } = await world(t);
  const a = docker('h1');
  const b = docker('h2');
  const req = { addressSpace: 'local', pool: '10.32.0.0/24', options: noOpts, v6: false };
  const pa = await a.requestPool(req, ctx);
  const pb = await b.requestPool(req, ctx);
  t.is(pa.poolId, pb.poolId);
  // Both engines request the (distributed) gateway; endpoints never collide across hosts.
  await a.requestAddress({ poolId: pa.poolId, options: { type: 'gateway', extra: {} } }, ctx);
  await b.requestAddress({ poolId: pb.poolId, options: { type: 'gateway', extra: {} } }, ctx);
  const ea = await a.requestAddress({ poolId: pa.poolId, options: noOpts }, ctx);
  const eb = await b.requestAddress({ poolId: pb.poolId, options: noOpts }, ctx);
  t.not(ea.address, eb.address);
  // Host a removes its network: its gateway release keeps the shared gateway, its ref goes.
  await a.releaseAddress({ poolId: pa.poolId, address: '10.32.0.1' }, ctx);
  await a.releasePool({ poolId: pa.poolId }, ctx);
  const left = await ipam('h2').getPool(pa.poolId);
  t.is(left.refs.length, 1);
  t.true(left.refs[0]!.startsWith('docker:h2:'));
  t.true((await ipam('h2').listAllocations(pa.poolId)).some((x) => x.address === '10.32.0.1' && x.kind === 'gateway'));
  // A second ReleasePool from host a (no ref left there) leaves b's pool alone.
  await a.releasePool({ poolId: pa.poolId }, ctx);
  t.is((await ipam('h2').getPool(pa.poolId)).refs.length, 1);
});

test("the engine's rollback of a refused second network releases only the second request's ref", async (t) => {
  const { docker, ipam } = await world(t);
  const d = docker('h1');
  const req = { addressSpace: 'local', pool: '10.33.0.0/24', options: noOpts, v6: false };
  const p1 = await d.requestPool(req, ctx);
  await d.requestAddress({ poolId: p1.poolId, options: noOpts }, ctx);
  const p2 = await d.requestPool(req, ctx); // e.g. the bridge driver then refuses the overlap
  t.is(p2.poolId, p1.poolId);
  await d.releasePool({ poolId: p2.poolId }, ctx);
  t.is((await ipam('h1').getPool(p1.poolId)).refs.length, 1);
  t.is((await ipam('h1').listAllocations(p1.poolId)).length, 1, 'the first network keeps its addresses');
});

test('auto pools (local and global, IPv4 and IPv6) are distinct per request; options and spaces are validated', async (t) => {
  const { docker } = await world(t);
  const d = docker('h1');
  const l1 = await d.requestPool({ addressSpace: 'local', options: noOpts, v6: false }, ctx);
  const l2 = await d.requestPool({ addressSpace: 'local', options: noOpts, v6: false }, ctx);
  const g1 = await d.requestPool({ addressSpace: 'global', options: noOpts, v6: false }, ctx);
  const v6 = await d.requestPool({ addressSpace: 'local', options: noOpts, v6: true }, ctx);
  t.deepEqual([l1.pool, l2.pool, g1.pool], ['172.17.0.0/16', '172.18.0.0/16', '10.0.0.0/24']);
  t.regex(v6.pool, /^fd17:.*\/64$/);
  const space = await t.throwsAsync(d.requestPool({ addressSpace: 'LocalDefault', options: noOpts, v6: false }, ctx));
  t.like(space, { kind: 'bad-request' });
  t.regex(space!.message, /LocalDefault/);
  const opt = await t.throwsAsync(d.requestPool({ addressSpace: 'local', options: { extra: { 'tsipam.x': '1' } }, v6: false }, ctx));
  t.like(opt, { kind: 'bad-request' });
  t.regex(opt!.message, /tsipam\.x/);
  const overlap = await t.throwsAsync(d.requestPool({ addressSpace: 'local', pool: '172.17.5.0/24', options: noOpts, v6: false }, ctx));
  t.like(overlap, { kind: 'conflict', code: 'pool-overlap' });
});

test('an exhausted pool says so', async (t) => {
  const { docker } = await world(t);
  const d = docker('h1');
  const p = await d.requestPool({ addressSpace: 'local', pool: '10.34.0.0/30', options: noOpts, v6: false }, ctx);
  await d.requestAddress({ poolId: p.poolId, options: { type: 'gateway', extra: {} } }, ctx);
  t.is((await d.requestAddress({ poolId: p.poolId, options: noOpts }, ctx)).address, '10.34.0.2/30');
  const err = await t.throwsAsync(d.requestAddress({ poolId: p.poolId, options: noOpts }, ctx));
  t.like(err, { kind: 'conflict', code: 'pool-exhausted' });
});
