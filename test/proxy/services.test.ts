// Service backends kept current from the store (embedded SQLite): selection by label and by
// name, endpoint arrivals and departures, service removal, a bad record reported and skipped.
// The firewall programs a namespace of its own; the rules are read back with iptables-save.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firewall } from '../../proxy/firewall.js';
import { endpointView, selectBackends, ServiceController } from '../../proxy/services.js';
import { keys, SqliteStore } from '../../store/index.js';
import { NetnsSet } from '../harness/netns.js';

test('endpoint records are read tolerantly and selected by label or name', (t) => {
  const e1 = endpointView('k1', JSON.stringify({ name: 'web-1', labels: { app: 'web' }, ipv4: '172.30.0.2/24', ipv6: 'fd30::2/64' }))!;
  const e2 = endpointView('k2', JSON.stringify({ name: 'db', aliases: ['pg'], addresses: ['172.30.0.4', 'junk'] }))!;
  t.deepEqual(e1.addresses, ['172.30.0.2', 'fd30::2']);
  t.deepEqual(e2.addresses, ['172.30.0.4']);
  t.is(endpointView('k3', 'not json'), undefined);
  const svc = { name: 's', vip: '10.96.0.1', ports: [{ proto: 'tcp' as const, port: 80 }], selector: { labels: { app: 'web' }, endpoints: ['pg'] } };
  t.deepEqual(selectBackends(svc, [e1, e2]), ['172.30.0.2', '172.30.0.4']);
  t.deepEqual(selectBackends({ ...svc, vip: 'fd96::1' }, [e1, e2]), ['fd30::2']);
});

test('the controller follows services and endpoints in the store', async (t) => {
  const set = new NetnsSet('psc');
  const dir = mkdtempSync(join(tmpdir(), 'tso-svc-'));
  const store = SqliteStore.open(join(dir, 'store.db'));
  const errors: string[] = [];
  let controller: ServiceController | undefined;
  t.teardown(async () => {
    await controller?.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    await set.cleanup();
  });
  const ns = await set.add('h');
  const fw = new Firewall({ netnsPath: ns.path });
  await fw.init();
  const ep = (id: string, v: object) => store.put(keys.endpoint('net1', id), JSON.stringify(v));
  await ep('e1', { name: 'web-1', labels: { app: 'web' }, ipv4: '172.30.0.2/24' });
  await ep('e2', { name: 'web-2', labels: { app: 'web' }, addresses: ['172.30.0.3'] });
  await ep('e3', { name: 'db', labels: { app: 'db' }, ipv4: '172.30.0.4' });
  await store.put(keys.service('web'), JSON.stringify({ vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80 }], selector: { labels: { app: 'web' } } }));
  await store.put(keys.service('db'), JSON.stringify({ vip: '10.96.0.11', ports: [{ proto: 'tcp', port: 5432 }], selector: { endpoints: ['db'] } }));
  await store.put(keys.service('bad'), JSON.stringify({ vip: 'nope', ports: [{ proto: 'tcp', port: 1 }], selector: {} }));
  controller = new ServiceController({ store, firewall: fw, onError: (err, what) => errors.push(`${what}: ${(err as Error).message}`) });
  await controller.start();

  const dnats = async () => {
    const text = await ns.exec('iptables-save', ['-t', 'nat']);
    return [...text.matchAll(/--to-destination ([\d.]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`).sort();
  };
  const eventually = async (want: string[], what: string) => {
    for (let i = 0; i < 100; i++) {
      await controller!.idle();
      const got = await dnats();
      if (JSON.stringify(got) === JSON.stringify(want)) return t.pass(what);
      await new Promise((r) => setTimeout(r, 30));
    }
    t.deepEqual(await dnats(), want, what);
  };
  await eventually(['172.30.0.2:80', '172.30.0.3:80', '172.30.0.4:5432'], 'initial selection');
  t.true(errors.some((e) => e.includes('service bad')), errors.join('; '));

  await ep('e4', { name: 'web-3', labels: { app: 'web' }, ipv4: '172.30.0.5' });
  await eventually(['172.30.0.2:80', '172.30.0.3:80', '172.30.0.4:5432', '172.30.0.5:80'], 'a new endpoint joins');
  await store.delete(keys.endpoint('net1', 'e1'));
  await eventually(['172.30.0.3:80', '172.30.0.4:5432', '172.30.0.5:80'], 'a departed endpoint leaves');
  await store.delete(keys.service('web'));
  await eventually(['172.30.0.4:5432'], 'a removed service');
});
