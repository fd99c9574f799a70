// Every read command of the CLI (issue 9's list) has help and `--json`, and says the same thing in
// both forms: tables cut Docker's 64-digit ids to 12 like `docker network ls` (`--no-trunc` and
// --json keep them whole), `inspect` resolves the references a user types (name, CIDR, 12-digit
// prefix) and a reference that names nothing is one line on stderr and exit 1.
import test from 'ava';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { runCli } from '../harness/daemon.js';
import { endpoint, network, seedCluster, tempStore } from './fixtures.js';

const cli = (args: string[]) => runCli(args);

const READS = [
  ['host', 'ls'], ['network', 'ls'], ['network', 'inspect'], ['endpoint', 'ls'], ['endpoint', 'inspect'],
  ['ipam', 'ls'], ['ipam', 'inspect'], ['link', 'ls'], ['service', 'ls'], ['doctor'],
];

test('every read command has help naming --json and --store', async (t) => {
  const helps = await Promise.all(READS.map((argv) => cli([...argv, '--help'])));
  READS.forEach((argv, i) => {
    const h = helps[i]!;
    t.is(h.code, 0, `${argv.join(' ')}: ${h.stderr}`);
    t.regex(h.stdout, new RegExp(`^Usage: tsoverlay ${argv.join(' ')} `, 'm'), argv.join(' '));
    t.regex(h.stdout, /--json\s/, `${argv.join(' ')} --json`);
    t.regex(h.stdout, /--store <url>/, `${argv.join(' ')} --store`);
  });
  const tables = READS.filter((a) => a.at(-1) === 'ls');
  for (const argv of tables) t.regex(helps[READS.indexOf(argv)]!.stdout, /--no-trunc/, `${argv.join(' ')} --no-trunc`);
});

const NET_ID = 'e8deae95a0f45de100ea56dd75ab021f591a1b4f6c138a50827fd87b83118a82';
const EP_ID = '05b5ad9cea8f34c13daa4e205d5f603addd97d2dc347a3e6c2c2c75936b307eb';
const CTR_ID = '0ff78a56f8f004f1fdd7d3acea1aef4c28985c7e11564e722fe313f2dea5d3ae';

test('ls: tables show 12-digit ids, --no-trunc and --json the whole; inspect finds what ls shows', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const { webPool } = await seedCluster(tmp.store);
  const recs = new RecordStore(tmp.store);
  await recs.createNetwork(network(NET_ID, 'dk', '10.79.0.0/24'));
  await recs.createEndpoint(endpoint(EP_ID, NET_ID, '10.79.0.2/24', { containerId: CTR_ID, names: ['app1'], aliases: [CTR_ID.slice(0, 12)] }));
  const s = ['--store', tmp.url];

  const [table, full, json, netIns, epByPrefix, epByName, pool, ...lsJson] = await Promise.all([
    cli(['endpoint', 'ls', ...s]),
    cli(['endpoint', 'ls', '--no-trunc', ...s]),
    cli(['endpoint', 'ls', '--json', ...s]),
    cli(['network', 'inspect', 'dk', 'web', ...s]),
    cli(['endpoint', 'inspect', EP_ID.slice(0, 12), ...s]),
    cli(['endpoint', 'inspect', 'app1', '--json', ...s]),
    cli(['ipam', 'inspect', '10.77.0.0/24', ...s]),
    ...[['host', 'ls'], ['network', 'ls'], ['ipam', 'ls'], ['link', 'ls'], ['service', 'ls']].map((a) => cli([...a, '--json', ...s])),
  ]);
  t.is(table.code, 0, table.stderr);
  const row = table.stdout.split('\n').find((l) => l.includes('app1'))!;
  t.deepEqual(row.split(/\s{2,}/).slice(0, 5), [EP_ID.slice(0, 12), NET_ID.slice(0, 12), 'h1', CTR_ID.slice(0, 12), `app1,${CTR_ID.slice(0, 12)}`]);
  t.false(table.stdout.includes(EP_ID), 'the table cuts ids');
  t.deepEqual(full.stdout.split('\n').find((l) => l.includes('app1'))!.split(/\s{2,}/).slice(0, 4), [EP_ID, NET_ID, 'h1', CTR_ID]);
  t.like((JSON.parse(json.stdout) as { id: string }[]).find((e) => e.id === EP_ID), { network: NET_ID, container: CTR_ID });

  t.is(netIns.code, 0, netIns.stderr);
  const nets = JSON.parse(netIns.stdout) as { id: string; name: string; endpoints: { id: string }[] }[];
  t.deepEqual(nets.map((n) => [n.id, n.name, n.endpoints.length]), [[NET_ID, 'dk', 1], ['net-web', 'web', 3]]);
  for (const r of [epByPrefix, epByName]) t.like(JSON.parse(r.stdout), [{ id: EP_ID, networkId: NET_ID, networkName: 'dk', containerId: CTR_ID }]);
  t.is(pool.code, 0, pool.stderr);
  const [p] = JSON.parse(pool.stdout) as { poolId: string; cidr: string; allocations: { address: string }[] }[];
  t.is(p!.poolId, webPool);
  t.is(p!.allocations.filter((a) => a.address.startsWith('10.77.0.')).length, p!.allocations.length);
  t.true(p!.allocations.length >= 3);
  for (const r of lsJson) {
    t.is(r.code, 0, r.stderr);
    t.true(Array.isArray(JSON.parse(r.stdout)));
  }
});

test('inspect of something that does not exist: one line on stderr, exit 1, nothing on stdout', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await seedCluster(tmp.store);
  const s = ['--store', tmp.url];
  const runs = await Promise.all([
    cli(['network', 'inspect', 'web', 'nope', ...s]),
    cli(['endpoint', 'inspect', 'nope', ...s]),
    cli(['ipam', 'inspect', '10.1.2.0/24', ...s]),
  ]);
  const expected = [/no network "nope"/, /no endpoint "nope"/, /no pool "10\.1\.2\.0\/24"/];
  runs.forEach((r, i) => {
    t.is(r.code, 1);
    t.is(r.stdout, '');
    t.regex(r.stderr, expected[i]!);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});
