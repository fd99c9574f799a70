// Ipam.setOwner: an address allocated without an owner (a Docker RequestAddress) gets one later,
// after which release-by-owner and GC by owner find it.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam, IpamError, ownerForDocker } from '../../ipam/index.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';

const dir = mkdtempSync(join(tmpdir(), 'tsot-ipown-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('setOwner: once, idempotently, refused for another owner; then release and GC by owner see it', async (t) => {
  const store = await openStore(`sqlite://${join(dir, 'a.db')}`);
  t.teardown(() => store.close());
  const ipam = new Ipam(store, { hostId: 'h1' });
  const p = await ipam.requestPool({ space: 'local', cidr: '10.40.0.0/24' });
  const a = await ipam.requestAddress(p.poolId);
  const b = await ipam.requestAddress(p.poolId);
  const ep1 = ownerForDocker('ep1');
  t.false(await ipam.setOwner(p.poolId, '10.40.0.200', ep1), 'not allocated');
  t.true(await ipam.setOwner(p.poolId, a.address, ep1));
  t.true(await ipam.setOwner(p.poolId, a.address, ep1), 'idempotent');
  const other = await t.throwsAsync(ipam.setOwner(p.poolId, a.address, ownerForDocker('ep2')), { instanceOf: IpamError });
  t.is(other?.code, 'owner-conflict');
  const second = await t.throwsAsync(ipam.setOwner(p.poolId, b.address, ep1), { instanceOf: IpamError });
  t.is(second?.code, 'owner-conflict', 'one address per owner and pool');
  t.like((await ipam.listAllocations(p.poolId)).find((x) => x.address === a.address), { owner: ep1 });
  // The same owner asking again gets its address back (the owner index is in place).
  t.is((await ipam.requestAddress(p.poolId, { owner: ep1 })).address, a.address);
  t.deepEqual((await ipam.allocationsOf(ep1)).map((x) => x.address), [a.address]);

  t.true(await ipam.setOwner(p.poolId, b.address, ownerForDocker('ep3')));
  const freed = await ipam.gc({ isOwnerValid: (o) => o !== ownerForDocker('ep3') });
  t.deepEqual(freed.map((f) => f.address), [b.address]);
  t.deepEqual((await ipam.releaseOwner(ep1)).map((f) => f.address), [a.address]);
  t.deepEqual(await ipam.listAllocations(p.poolId), []);
  // A stale owner index entry (its address long gone) does not block setting that owner.
  const c = await ipam.requestAddress(p.poolId);
  await store.put(keys.ipamOwner(ep1, p.poolId), JSON.stringify({ address: '10.40.0.250', block: '10.40.0.192/26', req: 'gone' }));
  t.true(await ipam.setOwner(p.poolId, c.address, ep1));
  t.deepEqual((await ipam.allocationsOf(ep1)).map((x) => x.address), [c.address]);
});
