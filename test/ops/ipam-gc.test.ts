// `tsoverlay ipam gc`'s judgement of owners (from endpoint and attachment records) and its
// safety: an address freed and taken again by someone else while GC runs is never freed.
import test from 'ava';
import { Ipam, ownerForCni, ownerForDocker } from '../../ipam/index.js';
import { ownerState, readLiveness } from '../../daemon/commands/ipam-gc.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { keys } from '../../store/keys.js';
import { endpoint, network, tempStore } from './fixtures.js';

test('owners: Docker endpoints by record, CNI attachments by endpoint or attachment record, others unknown', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const recs = new RecordStore(tmp.store);
  await recs.createNetwork(network('cni:h1:web', 'web', '10.77.0.0/24'));
  await recs.createEndpoint(endpoint('c1:eth0', 'cni:h1:web', '10.77.0.2/24'));
  await recs.createEndpoint(endpoint('d0c0e1', 'cni:h1:web', '10.77.0.3/24'));
  const att = { network: 'web', containerId: 'c2', ifname: 'eth1', hostId: 'h1', createdAt: new Date().toISOString() };
  await tmp.store.put(keys.cniAttachment('web', 'c2', 'eth1'), JSON.stringify(att));
  const live = await readLiveness(tmp.store);

  t.is(ownerState(ownerForDocker('d0c0e1'), live), 'live');
  t.is(ownerState(ownerForDocker('d0c0e2'), live), 'gone');
  t.is(ownerState(ownerForCni('web', 'c1', 'eth0'), live), 'live');
  t.is(ownerState(ownerForCni('web', 'c2', 'eth1'), live), 'live');
  t.is(ownerState(ownerForCni('web', 'c3', 'eth0'), live), 'gone');
  // tsipam behind another plugin (no network record of ours named so): not ours to judge.
  t.is(ownerState(ownerForCni('other', 'c3', 'eth0'), live), 'unknown');
  t.is(ownerState('someone-else', live), 'unknown');
  // A Docker network of the same name as a CNI network elsewhere does not make its owners judgeable.
  await recs.createNetwork(network('e8deae95a0f45de100ea56dd75ab021f591a1b4f6c138a50827fd87b83118a82', 'dk', '10.78.0.0/24'));
  t.is(ownerState(ownerForCni('dk', 'c3', 'eth0'), await readLiveness(tmp.store)), 'unknown');
});

test('GC frees the record it read, never an address taken again meanwhile (compare-and-swap)', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await new RecordStore(tmp.store).createNetwork(network('cni:h1:web', 'web', '10.77.0.0/24'));
  const ipam = new Ipam(tmp.store, { hostId: 'h1' });
  const pool = await ipam.requestPool({ space: 'local', cidr: '10.77.0.0/24', ref: 'cni:web' });
  const dead = await ipam.requestAddress(pool.poolId, { owner: ownerForCni('web', 'gone1', 'eth0') });
  const other = new Ipam(tmp.store, { hostId: 'h2' });
  const live = await readLiveness(tmp.store);
  let raced = false;
  const freed = await ipam.gc({
    isOwnerValid: async (owner) => {
      if (ownerState(owner, live) !== 'gone') return true;
      // Between GC's read and its free, the address is released and allocated to a new owner.
      await other.releaseAddress(pool.poolId, dead.address);
      await other.requestAddress(pool.poolId, { owner: ownerForCni('web', 'new1', 'eth0'), address: dead.address });
      raced = true;
      return false;
    },
  });
  t.true(raced);
  t.deepEqual(freed, []);
  t.deepEqual((await ipam.listAllocations(pool.poolId)).map((a) => [a.address, a.owner]), [[dead.address, 'cni:web:new1:eth0']]);
});
