// `tsoverlay network create|rm` and `ipam gc` against a real daemon in a test namespace: the CLI
// asks the daemon's local API, the bridge appears in (and leaves) the daemon's namespace, a CNI
// ADD through the daemon joins the network by its name, bad input changes neither store nor
// kernel, and `ipam gc` frees a leaked allocation while keeping live ones.
import test from 'ava';
import { request } from 'node:http';
import { Ipam, ownerForCni } from '../../ipam/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { openStore } from '../../store/open.js';
import { runCli, startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { network } from '../ops/fixtures.js';

const DOCKER_ID = 'e8deae95a0f45de100ea56dd75ab021f591a1b4f6c138a50827fd87b83118a82';

const cli = (args: string[]) => runCli(args);

/** A CNI invocation run by the daemon (POST /v1/cni), as the executables hand it over. */
function cniCall(socket: string, command: string, conf: unknown, env: Record<string, string>): Promise<{ status: number; body: any }> {
  const body = JSON.stringify({ plugin: 'tsbridge', env: { CNI_COMMAND: command, CNI_PATH: '/usr/lib/cni', ...env }, stdin: JSON.stringify(conf) });
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/v1/cni', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject).end(body);
  });
}

async function bridges(ns: Netns): Promise<string[]> {
  const links = JSON.parse(await ns.ip('-j', 'link', 'show', 'type', 'bridge')) as { ifname: string }[];
  return links.map((l) => l.ifname).sort();
}

async function lsJson(d: DaemonHandle, what: string[]): Promise<any[]> {
  const r = await cli([...what, '--json', '--store', d.store]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

async function daemonIn(t: { teardown(fn: () => unknown): void }, tag: string) {
  const nets = new NetnsSet(tag);
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const d = await startDaemon({ netnsPath: host.path, hostId: 'h1' });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready', 60_000);
  return { nets, host, d };
}

test('network create and rm through the daemon: bridge in the kernel, record in the store, CNI joins it by name', async (t) => {
  const { nets, host, d } = await daemonIn(t, 'nadm');
  const sock = ['--socket', d.socket];
  const made = await cli(['network', 'create', '--driver', 'tsbridge', '--subnet', '10.91.0.0/24', '-o', 'com.docker.network.driver.mtu=1400', ...sock, 'web']);
  t.is(made.code, 0, made.stderr);
  t.is(made.stdout, 'cni:h1:web\n');

  const [net] = (await lsJson(d, ['network', 'ls'])).filter((n) => n.name === 'web');
  t.like(net, { id: 'cni:h1:web', driver: 'bridge', subnets: ['10.91.0.0/24'], gateways: ['10.91.0.1'], endpoints: 0 });
  t.true((await bridges(host)).includes(net.bridge));
  t.regex(await host.ip('-o', 'addr', 'show', 'dev', net.bridge), /inet 10\.91\.0\.1\/24/);
  t.regex(await host.ip('-o', 'link', 'show', 'dev', net.bridge), /mtu 1400/);
  t.deepEqual((await lsJson(d, ['ipam', 'ls'])).map((a) => [a.address, a.kind, a.network]), [['10.91.0.1', 'gateway', 'web']]);

  // A CNI conflist named "web" (the daemon runs it) finds the network and its pool.
  const ctr = await nets.add('c1');
  const conf = {
    cniVersion: '1.0.0', name: 'web', type: 'tsbridge', isGateway: true, ipMasq: true, mtu: 1400, store: d.store,
    ipam: { type: 'tsipam', ranges: [[{ subnet: '10.91.0.0/24' }]] },
  };
  const env = { CNI_CONTAINERID: 'c0ffee01', CNI_NETNS: ctr.path, CNI_IFNAME: 'eth0' };
  const add = await cniCall(d.socket, 'ADD', conf, env);
  t.is(add.status, 200, JSON.stringify(add.body));
  t.is(add.body.result.ips[0].address, '10.91.0.2/24');
  t.regex(await ctr.exec('ping', ['-c1', '-W2', '10.91.0.1']), /1 received/);

  // Removing a network with an endpoint is refused (Docker: "has active endpoints"), and changes nothing.
  const busy = await cli(['network', 'rm', ...sock, 'web']);
  t.is(busy.code, 1);
  t.regex(busy.stderr, /^tsoverlay: error while removing network: network web id cni:h1:web has active endpoints/);
  t.true((await bridges(host)).includes(net.bridge));

  t.is((await cniCall(d.socket, 'DEL', conf, env)).status, 200);
  const rm = await cli(['network', 'rm', ...sock, 'web']);
  t.is(rm.code, 0, rm.stderr);
  t.is(rm.stdout, 'web\n');
  t.deepEqual((await lsJson(d, ['network', 'ls'])).filter((n) => n.name === 'web'), []);
  t.false((await bridges(host)).includes(net.bridge));
  t.deepEqual(await lsJson(d, ['ipam', 'ls']), []);

  // An overlay network: recorded cluster-wide with a VNI; rm takes it away.
  const ov = await cli(['network', 'create', '-d', 'tsoverlay', '--subnet', '10.92.0.0/24', '-o', 'vni=5001', ...sock, 'ov']);
  t.is(ov.code, 0, ov.stderr);
  t.is(ov.stdout, 'cni:overlay:ov\n');
  const insp = await cli(['network', 'inspect', 'ov', '--store', d.store]);
  t.like(JSON.parse(insp.stdout)[0], { driver: 'overlay', scope: 'global', vni: 5001, subnets: ['10.92.0.0/24'] });
  // No --subnet: one from the default pools (as docker network create); a host network has none.
  const [auto, hostNet] = await Promise.all([cli(['network', 'create', '--json', ...sock, 'auto']), cli(['network', 'create', '-d', 'tshost', ...sock, 'hn'])]);
  t.is(auto.code, 0, auto.stderr);
  t.regex(JSON.parse(auto.stdout).subnets[0], /^172\.(1[7-9]|2\d|3[01])\.0\.0\/16$/);
  t.is(hostNet.stdout, 'cni:h1:hn\n', hostNet.stderr);
  t.is((await cli(['network', 'rm', ...sock, 'ov', 'auto', 'hn'])).code, 0);
  t.deepEqual(await lsJson(d, ['network', 'ls']), []);
  t.deepEqual(await lsJson(d, ['ipam', 'ls']), []);
});

test('bad input to network create: one line naming the flag and value, exit 1, nothing in store or kernel', async (t) => {
  const { host, d } = await daemonIn(t, 'nadmbad');
  const sock = ['--socket', d.socket];
  t.is((await cli(['network', 'create', '--subnet', '10.93.0.0/24', '-o', 'bridge=tsotkn0', ...sock, 'taken'])).code, 0);
  // A pool someone else holds (a Docker network's tsipam pool of this store).
  const store = await openStore(d.store);
  t.teardown(() => store.close());
  await new Ipam(store, { hostId: 'h1' }).requestPool({ space: 'local', cidr: '10.99.0.0/24', ref: 'docker:h1:x' });
  const before = { nets: await lsJson(d, ['network', 'ls']), pools: await lsJson(d, ['ipam', 'ls']), bridges: await bridges(host) };

  const cases: [string[], RegExp][] = [
    [['--subnet', '10.94.0.0/33', 'a'], /--subnet "10\.94\.0\.0\/33": .*prefix length/],
    [['--subnet', '10.94.0.1/24', 'a'], /--subnet "10\.94\.0\.1\/24": host bits are set/],
    [['--driver', 'nosuch', 'a'], /--driver <driver>' argument 'nosuch' is invalid/],
    [['--subnet', '10.94.0.0/24', 'taken'], /network with name taken already exists/],
    [['--subnet', '10.94.0.0/24', '-o', 'colour=red', 'a'], /-o "colour=red": not an option of the tsbridge driver/],
    [['--subnet', '10.94.0.0/24', '-o', 'mtu=abc', 'a'], /-o "mtu=abc": expected an integer/],
    [['--subnet', '10.94.0.0/24', '-o', 'mtu', 'a'], /-o "mtu": expected key=value/],
    [['--subnet', '10.94.0.0/24', '--gateway', '10.95.0.1', 'a'], /--gateway "10\.95\.0\.1": outside --subnet 10\.94\.0\.0\/24/],
    [['--subnet', '10.93.0.128/25', 'a'], /--subnet "10\.93\.0\.128\/25": overlaps 10\.93\.0\.0\/24 of network taken/],
    [['--ip-range', '10.94.0.0/28', 'a'], /--ip-range "10\.94\.0\.0\/28": needs --subnet/],
    [['-d', 'tshost', '--subnet', '10.94.0.0/24', 'a'], /--subnet "10\.94\.0\.0\/24": tshost networks use the host's own stack/],
    [['bad/name'], /NAME "bad\/name": expected 1–64 letters/],
    // Refused by the driver after the pool was made: the pool goes again.
    [['--subnet', '10.94.0.0/24', '-o', 'bridge=tsotkn0', 'a'], /-o "bridge=tsotkn0": bridge tsotkn0 already serves network cni:h1:taken/],
    [['--subnet', '10.99.0.0/24', 'a'], /--subnet "10\.99\.0\.0\/24": pool local\/10\.99\.0\.0\/24 is in use \(held by docker:h1:x\)/],
    [['--subnet', '10.99.0.0/25', 'a'], /--subnet "10\.99\.0\.0\/25": subnet 10\.99\.0\.0\/25 overlaps pool local\/10\.99\.0\.0\/24/],
  ];
  const outs = await Promise.all(cases.map(([args]) => cli(['network', 'create', ...sock, ...args])));
  outs.forEach((o, i) => {
    const [args, re] = cases[i]!;
    t.not(o.code, 0, args.join(' '));
    t.is(o.stdout, '', args.join(' '));
    t.regex(o.stderr, re, args.join(' '));
    t.is(o.stderr.trimEnd().split('\n').length, 1, `one line: ${o.stderr}`);
  });
  t.deepEqual({ nets: await lsJson(d, ['network', 'ls']), pools: await lsJson(d, ['ipam', 'ls']), bridges: await bridges(host) }, before);

  const pools = await new Ipam(store, { hostId: 'h1' }).listPools();
  t.deepEqual(pools.map((p) => [p.cidr, p.refs]), [['10.93.0.0/24', ['cni:taken']], ['10.99.0.0/24', ['docker:h1:x']]]);

  // rm: a name that is not there fails alone (the others are still removed); Docker's networks are Docker's.
  await new RecordStore(store).createNetwork(network(DOCKER_ID, 'dk', '10.97.0.0/24'));
  t.is((await cli(['network', 'create', '--subnet', '10.98.0.0/24', ...sock, 'gone'])).code, 0);
  const rm = await cli(['network', 'rm', ...sock, 'nosuch', 'dk', 'gone']);
  t.is(rm.code, 1);
  t.is(rm.stdout, 'gone\n');
  t.regex(rm.stderr, /^tsoverlay: no network "nosuch".*\ntsoverlay: network dk was created through Docker \(id e8deae95a0f4.*\): remove it with docker network rm\n$/);
  t.deepEqual((await lsJson(d, ['network', 'ls'])).map((n) => n.name).sort(), ['dk', 'taken']);

  // Help on each new command.
  const [create, remove, gc] = await Promise.all([['network', 'create'], ['network', 'rm'], ['ipam', 'gc']].map((a) => cli([...a, '--help'])));
  for (const flag of ['--driver', '--subnet', '--gateway', '--ip-range', '--internal', '--opt', '--socket', '--json']) t.true(create!.stdout.includes(flag), flag);
  t.regex(remove!.stdout, /^Usage: tsoverlay network rm\|remove \[options\] <network\.\.\.>/m);
  for (const flag of ['--dry-run', '--grace', '--json', '--store']) t.true(gc!.stdout.includes(flag), flag);

  // Without a daemon: the socket is named.
  const dead = await cli(['network', 'create', '--socket', `${d.dir}/nobody.sock`, 'x']);
  t.is(dead.code, 1);
  t.regex(dead.stderr, /cannot reach the tsoverlay daemon at .*nobody\.sock \(ENOENT/);
});

test('ipam gc frees an allocation whose owner is gone, keeps live ones, is idempotent; --dry-run changes nothing', async (t) => {
  const { nets, d } = await daemonIn(t, 'ipgc');
  const sock = ['--socket', d.socket];
  t.is((await cli(['network', 'create', '--subnet', '10.96.0.0/24', ...sock, 'app'])).code, 0);
  const ctr = await nets.add('c1');
  const conf = { cniVersion: '1.0.0', name: 'app', type: 'tsbridge', isGateway: true, ipMasq: true, store: d.store, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.96.0.0/24' }]] } };
  const add = await cniCall(d.socket, 'ADD', conf, { CNI_CONTAINERID: 'live01', CNI_NETNS: ctr.path, CNI_IFNAME: 'eth0' });
  t.is(add.status, 200, JSON.stringify(add.body));

  // A leak: an address of a container of "app" that has no endpoint (its DEL never came), allocated
  // two minutes ago; and a fresh one (an ADD in flight) that the grace time protects.
  const store = await openStore(d.store);
  t.teardown(() => store.close());
  const [pool] = (await new Ipam(store, { hostId: 'h1' }).listPools()).filter((p) => p.cidr === '10.96.0.0/24');
  const old = new Ipam(store, { hostId: 'h1', clock: () => Date.now() - 120_000 });
  const leaked = await old.requestAddress(pool!.poolId, { owner: ownerForCni('app', 'gone01', 'eth0') });
  const fresh = await new Ipam(store, { hostId: 'h1' }).requestAddress(pool!.poolId, { owner: ownerForCni('app', 'inflight', 'eth0') });
  const addresses = async () => (await lsJson(d, ['ipam', 'ls'])).map((a) => a.address).sort();
  const all = await addresses();
  t.deepEqual(all, ['10.96.0.1', '10.96.0.2', leaked.address, fresh.address].sort());

  const dry = await cli(['ipam', 'gc', '--dry-run', '--store', d.store]);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, new RegExp(`^${leaked.address.replace(/\./g, '\\.')}\\s+local/10\\.96\\.0\\.0/24\\s+app\\s+cni:app:gone01:eth0`, 'm'));
  t.regex(dry.stdout, /would release 1 allocation \(dry run/);
  t.deepEqual(await addresses(), all);

  const gc = await cli(['ipam', 'gc', '--json', '--store', d.store]);
  t.is(gc.code, 0, gc.stderr);
  t.like(JSON.parse(gc.stdout), [{ address: leaked.address, network: 'app', owner: 'cni:app:gone01:eth0', kind: 'endpoint' }]);
  t.deepEqual(await addresses(), ['10.96.0.1', '10.96.0.2', fresh.address].sort());

  const again = await cli(['ipam', 'gc', '--store', d.store]);
  t.regex(again.stdout, /released 0 allocations/);
  // With no grace, the in-flight one counts as leaked too; the live container's never does.
  const now = await cli(['ipam', 'gc', '--grace', '0', '--json', '--store', d.store]);
  t.deepEqual(JSON.parse(now.stdout).map((a: { address: string }) => a.address), [fresh.address]);
  t.deepEqual(await addresses(), ['10.96.0.1', '10.96.0.2']);
  const badGrace = await cli(['ipam', 'gc', '--grace', 'soon', '--store', d.store]);
  t.is(badGrace.code, 1);
  t.regex(badGrace.stderr, /--grace "soon": expected a whole number of seconds/);
});

test('network rm checks for endpoints under a mark: an ADD meanwhile backs out (CNI 11), a refused rm leaves no mark, a crashed one lapses', async (t) => {
  const { nets, d } = await daemonIn(t, 'nrmk');
  const sock = ['--socket', d.socket];
  t.is((await cli(['network', 'create', '--driver', 'tsbridge', '--subnet', '10.93.0.0/24', ...sock, 'race'])).code, 0);
  const conf = { cniVersion: '1.0.0', name: 'race', type: 'tsbridge', isGateway: true, ipMasq: true, store: d.store, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.93.0.0/24' }]] } };
  const [c1, c2] = [await nets.add('c1'), await nets.add('c2')];
  const env1 = { CNI_CONTAINERID: 'c0ffee11', CNI_NETNS: c1.path, CNI_IFNAME: 'eth0' };
  const env2 = { CNI_CONTAINERID: 'c0ffee12', CNI_NETNS: c2.path, CNI_IFNAME: 'eth0' };
  const store = await openStore(d.store);
  t.teardown(() => store.close());
  const records = new RecordStore(store);
  const mark = (ageMs: number) => records.updateNetwork('cni:h1:race', (cur) => ({ ...cur, removing: new Date(Date.now() - ageMs).toISOString() }));

  const first = await cniCall(d.socket, 'ADD', conf, env1);
  t.is(first.status, 200, JSON.stringify(first.body));
  t.is((await cli(['network', 'rm', ...sock, 'race'])).code, 1);
  t.is((await records.getNetwork('cni:h1:race'))?.removing, undefined, 'the refused removal took its mark away');

  // A removal under way (the mark rm sets before it lists endpoints): a new endpoint backs out.
  await mark(0);
  const refused = await cniCall(d.socket, 'ADD', conf, env2);
  t.is(refused.status, 503);
  t.is(refused.body.error.code, 11, JSON.stringify(refused.body));
  t.regex(refused.body.error.msg, /network race is being removed/);
  t.deepEqual((await records.listEndpoints('cni:h1:race')).map((e) => e.containerId), ['c0ffee11'], 'nothing recorded for the refused ADD');
  t.notRegex(await c2.ip('-o', 'link', 'show'), /eth0/);
  t.deepEqual((await lsJson(d, ['ipam', 'ls'])).map((a) => a.address).sort(), ['10.93.0.1', '10.93.0.2'], 'its address was given back');

  // A mark older than a removal can take (a crashed CLI or daemon) holds nothing back.
  await mark(31_000);
  t.is((await cniCall(d.socket, 'ADD', conf, env2)).status, 200);
  for (const env of [env1, env2]) t.is((await cniCall(d.socket, 'DEL', conf, env)).status, 200);
  t.is((await cli(['network', 'rm', ...sock, 'race'])).code, 0);
  t.deepEqual(await lsJson(d, ['network', 'ls']), []);
});
