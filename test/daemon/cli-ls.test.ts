// The read commands against a real SQLite store holding what the drivers and the IPAM write.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../store/open.js';
import { Ipam, ownerForCni } from '../../ipam/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { runCli } from '../harness/daemon.js';

const cli = (args: string[]) => runCli(args);

test('network, endpoint and ipam ls show what the store holds, as tables and as JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tso-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = `sqlite://${join(dir, 'store.db')}`;
  const store = await openStore(url);
  const ipam = new Ipam(store, { hostId: 'h1' });
  const pool = await ipam.requestPool({ space: 'local', cidr: '10.77.0.0/24', ref: 'net1' });
  const a = await ipam.requestAddress(pool.poolId, { owner: ownerForCni('web', 'c1', 'eth0') });
  const recs = new RecordStore(store);
  const now = new Date().toISOString();
  await recs.createNetwork({
    id: 'net1', name: 'web', driver: 'bridge', scope: 'local', hostId: 'h1', subnets: ['10.77.0.0/24'],
    gateways: ['10.77.0.1'], bridge: 'tsbr-web', internal: false, icc: true, masquerade: true, ipv6: false, options: {}, createdAt: now,
  });
  await recs.createEndpoint({
    id: 'ep1', networkId: 'net1', hostId: 'h1', driver: 'bridge', containerId: 'c1', names: ['app'], aliases: ['www'],
    addresses: [`${a.address}/24`], mac: '02:42:0a:4d:00:02', ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: a.address, containerPort: 80 }],
    exposed: [{ proto: 'tcp', port: 80 }], createdAt: now,
  });
  await store.close();

  const nets = await cli(['network', 'ls', '--store', url, '--json']);
  t.is(nets.code, 0, nets.stderr);
  t.like(JSON.parse(nets.stdout)[0], { id: 'net1', name: 'web', driver: 'bridge', subnets: ['10.77.0.0/24'], endpoints: 1 });

  const eps = await cli(['endpoint', 'ls', '--store', url, '--json']);
  t.like(JSON.parse(eps.stdout)[0], { id: 'ep1', network: 'net1', host: 'h1', names: ['app', 'www'], ports: ['0.0.0.0:8080->80/tcp'] });

  const allocs = await cli(['ipam', 'ls', '--store', url, '--json']);
  t.deepEqual(
    JSON.parse(allocs.stdout).map((r: any) => ({ address: r.address, pool: r.pool, network: r.network, owner: r.owner, host: r.host })),
    [{ address: a.address, pool: pool.poolId, network: 'web', owner: ownerForCni('web', 'c1', 'eth0'), host: 'h1' }],
  );

  const table = await cli(['ipam', 'ls', '--store', url]);
  t.regex(table.stdout, /^ADDRESS\s+POOL\s+NETWORK\s+OWNER\s+HOST/);
  t.true(table.stdout.includes(a.address));
});

test('a store URL that cannot be opened is a clear error, not a stack trace', async (t) => {
  const r = await cli(['network', 'ls', '--store', 'sqlite://relative.db']);
  t.not(r.code, 0);
  t.regex(r.stderr, /relative\.db/);
  t.notRegex(r.stderr, /\n\s+at /);
});
