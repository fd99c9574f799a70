// The IPAM behaviour suite over a real 3-member etcd cluster (each test under its own URL
// prefix), plus a leader kill in the middle of an allocation stream from 3 hosts.
import test from 'ava';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { Ipam } from '../../ipam/ipam.js';
import { ownerForCni } from '../../ipam/records.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { ipamBehaviour } from './behaviour.js';

let starting: Promise<EtcdCluster> | undefined;
const cluster = () => (starting ??= startEtcdCluster({ members: 3 }));
test.after.always(async () => {
  await (await starting?.catch(() => undefined))?.stop();
});
let n = 0;
const worldUrl = async () => `${(await cluster()).url}/ipam-t${n++}-${process.pid}`;

ipamBehaviour('etcd', {
  async world() {
    const url = await worldUrl();
    return { open: () => openStore(url) };
  },
});

// Serial tests run before the concurrent ones, so the kill disturbs no other test.
test.serial('etcd: a leader kill during allocation from 3 hosts loses nothing and duplicates nothing', async (t) => {
  const c = await cluster();
  const url = await worldUrl();
  const stores: Store[] = [];
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const hosts = await Promise.all(
    ['A', 'B', 'C'].map(async (h) => {
      const s = await openStore(url);
      stores.push(s);
      return new Ipam(s, { hostId: h });
    }),
  );
  const p = await hosts[0]!.requestPool({ space: 'global', cidr: '10.77.0.0/22' });
  const told = new Map<string, string>(); // owner -> address the caller was given
  let failures = 0;
  let killed = false;
  let restarted: Promise<void> | undefined;
  const perWorker = 25;
  const leader = await c.leader();
  let atKill = 0;
  // A client retries a failed ADD with the same owner, as a runtime retries CNI ADD.
  const add = async (h: Ipam, owner: string) => {
    for (let i = 0; ; i++) {
      try {
        return (await h.requestAddress(p.poolId, { owner })).address;
      } catch (err) {
        failures++;
        if (i >= 40 || !(err as { retryable?: boolean }).retryable) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const workers = hosts.flatMap((h, hi) =>
    Array.from({ length: 4 }, async (_, w) => {
      for (let k = 0; k < perWorker; k++) {
        const owner = ownerForCni('net', `c${hi}-${w}-${k}`, 'eth0');
        told.set(owner, await add(h, owner));
        if (!killed && told.size >= 30) {
          killed = true;
          atKill = told.size;
          restarted = leader.kill().then(() => new Promise((r) => setTimeout(r, 1500))).then(() => leader.start());
        }
      }
    }),
  );
  await Promise.all(workers);
  t.true(killed);
  t.log(`killed leader ${leader.name} after ${atKill} of ${told.size} allocations; ${failures} failed attempts were retried by callers`);
  t.true(atKill < told.size / 2, 'most allocations ran after the kill');
  t.is(told.size, 3 * 4 * perWorker);
  const addresses = [...told.values()];
  t.is(new Set(addresses).size, addresses.length, 'no address was handed out twice');
  const stored = await hosts[0]!.listAllocations(p.poolId);
  t.deepEqual(
    stored.map((s) => `${s.owner}=${s.address}`).sort(),
    [...told].map(([o, a]) => `${o}=${a}`).sort(),
    'the store holds exactly what callers were told: nothing lost, nothing extra',
  );
  // Let the killed member rejoin before other tests run.
  await restarted;
});
