// `tsoverlay link …` and `tsoverlay service …` as a user runs them (real CLI processes over a
// real SQLite store holding driver-shaped records), and the daemon's LinkController applying
// link records to a real firewall in a test namespace (rules read back with iptables-save).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStoreRules } from '../../daemon/store-rules.js';
import { preloadFirewall } from '../../plugins/cni/firewall-state.js';
import { LinkController } from '../../plugins/drivers/common/link-controller.js';
import { findEndpoint, linkEnv } from '../../plugins/drivers/common/link-records.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../../plugins/drivers/common/records.js';
import { Firewall } from '../../proxy/firewall.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { runCli } from '../harness/daemon.js';
import { NetnsSet } from '../harness/netns.js';

const cli = (args: string[]) => runCli(args);

const now = new Date().toISOString();
const network = (id: string, name: string): NetworkRecord => ({
  id, name, driver: 'bridge', scope: 'local', hostId: 'h1', subnets: ['10.78.0.0/24'], gateways: ['10.78.0.1'],
  bridge: 'tsl0', internal: false, icc: false, masquerade: true, ipv6: false, options: {}, createdAt: now,
});
const endpoint = (id: string, name: string, ip: string, exposed: EndpointRecord['exposed'] = []): EndpointRecord => ({
  id, networkId: 'n1', hostId: 'h1', driver: 'bridge', containerId: `c-${id}`, names: [name], aliases: [],
  addresses: [`${ip}/24`], ports: [], exposed, createdAt: now,
});

async function seeded(t: { teardown(fn: () => unknown): void }): Promise<{ url: string; store: Store }> {
  const dir = mkdtempSync(join(tmpdir(), 'tso-lnk-'));
  const url = `sqlite://${join(dir, 'store.db')}`;
  const store = await openStore(url);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const recs = new RecordStore(store);
  await recs.createNetwork(network('n1', 'appnet'));
  await recs.createEndpoint(endpoint('e-web', 'web', '10.78.0.2', [{ proto: 'tcp', port: 80 }]));
  await recs.createEndpoint(endpoint('e-db', 'db', '10.78.0.3', [{ proto: 'tcp', port: 5432 }]));
  await recs.createEndpoint(endpoint('e-cache', 'cache', '10.78.0.4'));
  return { url, store };
}

test('pure: endpoint references and the Docker link environment', (t) => {
  const eps = [endpoint('0123456789abcdef', 'web', '10.78.0.2'), { ...endpoint('e2', 'db', '10.78.0.3'), aliases: ['pg'] }];
  t.is(findEndpoint(eps, 'pg')?.id, 'e2');
  t.is(findEndpoint(eps, '0123456789ab')?.id, '0123456789abcdef');
  t.is(findEndpoint(eps, 'nobody'), undefined);
  t.deepEqual(linkEnv('web', 'db', '10.78.0.3', [{ proto: 'tcp', port: 5432 }]), [
    'DB_NAME=/web/db',
    'DB_PORT=tcp://10.78.0.3:5432',
    'DB_PORT_5432_TCP=tcp://10.78.0.3:5432',
    'DB_PORT_5432_TCP_ADDR=10.78.0.3',
    'DB_PORT_5432_TCP_PORT=5432',
    'DB_PORT_5432_TCP_PROTO=tcp',
  ]);
});

test('link add|ls|rm write, show and remove link records; refusals are one line', async (t) => {
  const { url, store } = await seeded(t);
  const add = await cli(['link', 'add', '--store', url, '--network', 'appnet', 'web', 'db']);
  t.is(add.code, 0, add.stderr);
  t.regex(add.stdout, /^linked web -> db \(as db\) on network appnet: 5432\/tcp$/m);
  t.regex(add.stdout, /^DB_PORT_5432_TCP=tcp:\/\/10\.78\.0\.3:5432$/m);
  const rec = JSON.parse((await store.get(keys.link('n1', 'web', 'db')))!.value);
  t.like(rec, { networkId: 'n1', from: 'web', to: 'db', alias: 'db', ports: [] });

  const [again, noPorts, unknown, explicit] = await Promise.all([
    cli(['link', 'add', '--store', url, '--network', 'appnet', 'web', 'db']),
    cli(['link', 'add', '--store', url, '--network', 'n1', 'web', 'cache']),
    cli(['link', 'add', '--store', url, '--network', 'appnet', 'web', 'nobody']),
    cli(['link', 'add', '--store', url, '--network', 'appnet', '--port', '6379', '--json', 'web', 'cache:redis']),
  ]);
  t.is(again.code, 1);
  t.regex(again.stderr, /already linked/);
  t.is(noPorts.code, 1);
  t.regex(noPorts.stderr, /exposes no port/);
  t.regex(unknown.stderr, /no endpoint "nobody" on network appnet/);
  t.notRegex(unknown.stderr + again.stderr, /\n\s+at /);
  t.is(explicit.code, 0, explicit.stderr);
  t.is(add.stderr, '', 'icc is off on appnet: no note');
  t.like(JSON.parse(explicit.stdout), { from: 'web', to: 'cache', alias: 'redis', ports: [{ proto: 'tcp', port: 6379 }] });
  t.true(JSON.parse(explicit.stdout).env.includes('REDIS_PORT=tcp://10.78.0.4:6379'));

  const ls = await cli(['link', 'ls', '--store', url, '--json']);
  t.deepEqual(JSON.parse(ls.stdout).map((r: any) => `${r.from}>${r.to} ${r.ports.join(',')} ${r.fromIp}>${r.toIp} ${r.state}`).sort(), [
    'web>cache 6379/tcp 10.78.0.2>10.78.0.4 active',
    'web>db 5432/tcp 10.78.0.2>10.78.0.3 active',
  ]);
  const rm = await cli(['link', 'rm', '--store', url, '--network', 'appnet', 'web', 'db']);
  t.is(rm.code, 0, rm.stderr);
  t.is(await store.get(keys.link('n1', 'web', 'db')), undefined);
  const rm2 = await cli(['link', 'rm', '--store', url, '--network', 'appnet', 'web', 'db']);
  t.is(rm2.code, 1);
  t.regex(rm2.stderr, /no link web -> db/);
});

test('service create|ls|add-backend|rm-backend|rm keep the record the ServiceController reads', async (t) => {
  const { url, store } = await seeded(t);
  const create = await cli(['service', 'create', 'web', '--store', url, '--vip', '10.96.0.10', '--port', '80', '--port', '8443:443/tcp', '--endpoint', 'web']);
  t.is(create.code, 0, create.stderr);
  t.regex(create.stdout, /service web created: 10\.96\.0\.10 80\/tcp->80, 8443\/tcp->443/);
  t.deepEqual(JSON.parse((await store.get(keys.service('web')))!.value), {
    name: 'web', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }, { proto: 'tcp', port: 8443, targetPort: 443 }], selector: { endpoints: ['web'] },
  });
  const [dup, badPort, badVip, badName] = await Promise.all([
    cli(['service', 'create', 'web', '--store', url, '--vip', '10.96.0.11', '--port', '80']),
    cli(['service', 'create', 'x', '--store', url, '--vip', '10.96.0.11', '--port', '80/icmp']),
    cli(['service', 'create', 'y', '--store', url, '--vip', '10.96.0', '--port', '80']),
    cli(['service', 'create', 'Bad_Name', '--store', url, '--vip', '10.96.0.11', '--port', '80']),
  ]);
  t.regex(dup.stderr, /service "web" exists/);
  t.regex(badPort.stderr, /icmp/);
  t.regex(badVip.stderr, /10\.96\.0/);
  t.regex(badName.stderr, /not a DNS label/);
  for (const r of [dup, badPort, badVip, badName]) t.is(r.code, 1);

  t.is((await cli(['service', 'add-backend', 'web', 'db', 'cache', '--store', url])).code, 0);
  t.is((await cli(['service', 'rm-backend', 'web', 'cache', '--store', url])).code, 0);
  const ls = await cli(['service', 'ls', '--store', url, '--json']);
  t.deepEqual(JSON.parse(ls.stdout), [{ name: 'web', vip: '10.96.0.10', ports: ['80/tcp->80', '8443/tcp->443'], selector: ['web', 'db'], backends: ['10.78.0.2', '10.78.0.3'] }]);
  t.is((await cli(['service', 'rm', 'web', '--store', url])).code, 0);
  t.is(await store.get(keys.service('web')), undefined);
});

test('the LinkController applies link records to the firewall and follows endpoint changes', async (t) => {
  const { store } = await seeded(t);
  const set = new NetnsSet('lnkc');
  t.teardown(() => set.cleanup());
  const ns = await set.add('h');
  const fw = new Firewall({ netnsPath: ns.path });
  await fw.init();
  await fw.setNetwork({ id: 'n1', bridge: 'tsl0', subnets: ['10.78.0.0/24'], icc: false });
  const waiting: string[] = [];
  const errors: string[] = [];
  await store.put(keys.link('n1', 'web', 'db'), JSON.stringify({ networkId: 'n1', from: 'web', to: 'db', alias: 'db', ports: [], createdAt: now }));
  await store.put(keys.link('other', 'a', 'b'), JSON.stringify({ networkId: 'other', from: 'a', to: 'b', alias: 'b', ports: [{ proto: 'tcp', port: 1 }], createdAt: now }));
  const ctl = new LinkController({ store, firewall: fw, onWaiting: (l, why) => waiting.push(`${l}: ${why}`), onError: (e, w) => errors.push(`${w}: ${(e as Error).message}`) });
  t.teardown(() => ctl.stop());
  await ctl.start();
  const links = async () => (await ns.exec('iptables-save', ['-t', 'filter'])).split('\n').filter((l) => l.startsWith('-A TSO-LINKS') && l.includes('ACCEPT')).map((l) => l.replace(/ -m comment --comment "[^"]*"/, ''));
  const eventually = async (pred: (rules: string[]) => boolean, what: string) => {
    for (let i = 0; i < 100; i++) {
      await ctl.idle();
      if (pred(await links())) return t.pass(what);
      await new Promise((r) => setTimeout(r, 30));
    }
    t.fail(`${what}: ${(await links()).join('\n')}`);
  };
  await eventually((r) => r.length === 2 && r.some((l) => l.includes('-s 10.78.0.2/32 -d 10.78.0.3/32') && l.includes('--dport 5432')) && r.some((l) => l.includes('--sport 5432')), 'web -> db:5432 both ways');
  t.true(waiting.some((w) => w.includes('links/other/a/b: no endpoint "a"')), waiting.join('; '));

  // db comes back as a new endpoint (a container restart) with another address: the link follows the name.
  await store.delete(keys.endpoint('n1', 'e-db'));
  await eventually((r) => r.length === 0, 'db gone: no rules');
  await new RecordStore(store).createEndpoint(endpoint('e-db2', 'db', '10.78.0.9', [{ proto: 'tcp', port: 5432 }]));
  await eventually((r) => r.length === 2 && r.every((l) => l.includes('10.78.0.9/32')), 'db back at 10.78.0.9');
  await store.delete(keys.link('n1', 'web', 'db'));
  await eventually((r) => r.length === 0, 'link removed');
  t.deepEqual(errors, []);
});

// A standalone CNI executable (daemon down) rebuilds the host's firewall from the store and
// reconciles our chains to it: links and service VIPs must be part of that state, or the
// reconcile removes what the daemon applied.
test('a standalone firewall reconcile (a CNI call while the daemon is down) keeps the daemon\'s links and service VIPs', async (t) => {
  const { store } = await seeded(t);
  const set = new NetnsSet('lnks');
  t.teardown(() => set.cleanup());
  const ns = await set.add('h');
  await store.put(keys.link('n1', 'web', 'db'), JSON.stringify({ networkId: 'n1', from: 'web', to: 'db', alias: 'db', ports: [], createdAt: now }));
  await store.put(keys.service('websvc'), JSON.stringify({ name: 'websvc', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], selector: { endpoints: ['web'] } }));
  const state = async () => {
    const save = await ns.exec('iptables-save', []);
    return { links: save.split('\n').filter((l) => l.startsWith('-A TSO-LINKS') && l.includes('ACCEPT')).length, vip: save.includes('-d 10.96.0.10/32') };
  };
  const errors: string[] = [];
  // The daemon: networks from the records, then its controllers.
  const daemonFw = new Firewall({ netnsPath: ns.path });
  t.teardown(() => daemonFw.close());
  await daemonFw.init();
  await preloadFirewall(daemonFw, store, 'h1', (m) => errors.push(m));
  const rules = await startStoreRules({ store, firewall: daemonFw, onError: (e, w) => errors.push(`${w}: ${(e as Error).message}`) });
  await rules.stop();
  t.deepEqual(await state(), { links: 2, vip: true }, 'applied by the daemon');
  // The daemon is gone; a standalone call rebuilds the state from the store and reconciles.
  const standalone = new Firewall({ netnsPath: ns.path });
  t.teardown(() => standalone.close());
  await standalone.bulk(async () => {
    await preloadFirewall(standalone, store, 'h1', (m) => errors.push(m));
    await standalone.reconcile();
  });
  t.deepEqual(await state(), { links: 2, vip: true }, 'still there after the standalone reconcile');
  t.deepEqual(errors, []);
});
