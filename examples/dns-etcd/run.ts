// Standalone service-discovery DNS over etcd (the book's ch. 22 store, SkyDNS-style): one
// `tsoverlay dns serve` answers every network's container names, the services and SkyDNS
// records, following etcd as it changes, for machines outside the cluster too.
// Run: sudo npx tsx examples/dns-etcd/run.ts   (see README.md)
import { binArgv, cni, etcdctl, resultIp, ROOT, startDaemon, startEtcd, tsoverlay, until } from '../lib/tsoverlay.js';
import { runScenario, type Netns, type Scenario } from '../lib/scenario.js';

const DNS = '192.168.71.1';

/** `dig +short NAME [TYPE]` at the standalone DNS, from a namespace → the answer lines. */
async function dig(from: Netns, name: string, type = 'A'): Promise<string[]> {
  const r = await from.tryExec('dig', ['+short', '+time=1', '+tries=2', `@${DNS}`, name, type]);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

/** The response code of a query (NOERROR, NXDOMAIN, REFUSED, …). */
async function status(from: Netns, name: string): Promise<string | undefined> {
  const r = await from.tryExec('dig', ['+time=1', '+tries=2', `@${DNS}`, name]);
  return /status: ([A-Z]+)/.exec(r.stdout)?.[1];
}

/** Poll dig until the answer equals want (the server follows etcd's watch). */
async function digUntil(from: Netns, name: string, want: string[], type = 'A'): Promise<string[]> {
  const same = (a: string[]) => JSON.stringify(a) === JSON.stringify([...want].sort());
  return (await until(async () => {
    const got = await dig(from, name, type);
    return same(got) ? got : undefined;
  }, 10_000, 250)) ?? (await dig(from, name, type));
}

async function main(s: Scenario): Promise<void> {
  s.step('infra runs etcd and the standalone DNS; a node runs containers; a laptop outside asks');
  const infra = await s.netns('infra');
  const node = await s.netns('node');
  const laptop = await s.netns('laptop');
  await s.veth(infra, 'eth0', '192.168.70.1/24', node, 'eth0', '192.168.70.2/24');
  await s.veth(infra, 'eth1', `${DNS}/24`, laptop, 'eth0', '192.168.71.2/24');
  const etcdUrl = await startEtcd(s, infra, '192.168.70.1');
  const store = 'etcd://192.168.70.1:2379';
  const [cmd, ...args] = binArgv('tsoverlay', ['dns', 'serve', '--store', store, '--listen', `${DNS}:53`]);
  const dnsProc = s.background(infra, cmd!, args, { cwd: ROOT, logFile: `${s.dir}/dns.log` });
  await dnsProc.waitForLine((l) => l.includes('"msg":"dns serving"'), 90_000);
  s.say(`etcd at ${etcdUrl}; infra$ tsoverlay dns serve --store ${store} --listen ${DNS}:53`);

  s.step('a container "web" on the node\'s CNI network "front" (the node\'s daemon keeps its records in etcd)');
  const d = await startDaemon(s, node, { hostId: 'node1', store });
  const web = await s.netns('web');
  const conf = {
    cniVersion: '1.0.0', name: 'front', type: 'tsbridge', bridge: 'tsbr-front', isGateway: true, ipMasq: true,
    store, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.42.0.0/24' }]] },
  };
  const webIp = resultIp(await cni(node, 'tsbridge', 'ADD', conf, { containerId: 'ctr-web', netns: web, podName: 'web' }));
  s.say(`web: ${webIp}`);
  const a = await digUntil(laptop, 'web.front.tsoverlay', [webIp]);
  s.say(`laptop$ dig +short @${DNS} web.front.tsoverlay  ->  ${a.join(' ')}`);
  s.expect(a.join() === webIp, 'the container\'s name answers from the standalone DNS');

  s.step('tsoverlay service create api --vip 10.96.0.20 --port 443');
  s.say((await tsoverlay(['service', 'create', 'api', '--store', store, '--vip', '10.96.0.20', '--port', '443'], infra)).trim());
  const svc = await digUntil(laptop, 'api.tsoverlay', ['10.96.0.20']);
  s.say(`laptop$ dig +short @${DNS} api.tsoverlay  ->  ${svc.join(' ')}`);
  s.expect(svc.join() === '10.96.0.20', 'the service name answers its VIP');

  s.step('SkyDNS records written with etcdctl (the CoreDNS etcd layout)');
  for (const [k, v] of [['x1', '{"host":"10.0.1.1","port":8080}'], ['x2', '{"host":"10.0.1.2","port":8080}']] as const) {
    await etcdctl(infra, etcdUrl, ['put', `/skydns/local/skydns/east/rails/${k}`, v]);
    s.say(`infra$ etcdctl put /skydns/local/skydns/east/rails/${k} '${v}'`);
  }
  const rails = await digUntil(laptop, 'rails.east.skydns.local', ['10.0.1.1', '10.0.1.2']);
  s.say(`laptop$ dig +short @${DNS} rails.east.skydns.local  ->  ${rails.join(' ')}`);
  s.expect(rails.join() === '10.0.1.1,10.0.1.2', 'both records answer');
  const srv = await dig(laptop, 'rails.east.skydns.local', 'SRV');
  s.say(`laptop$ dig +short @${DNS} rails.east.skydns.local SRV\n${srv.join('\n')}`);
  s.expect(srv.length === 2 && srv.every((l) => / 8080 /.test(l)), 'SRV answers carry the port');

  s.step('etcd changes are followed at once: etcdctl del …/rails/x2');
  await etcdctl(infra, etcdUrl, ['del', '/skydns/local/skydns/east/rails/x2']);
  const one = await digUntil(laptop, 'rails.east.skydns.local', ['10.0.1.1']);
  s.expect(one.join() === '10.0.1.1', 'only x1 is left');

  s.step('not an open resolver: names outside our zones are refused to the laptop');
  const out = await status(laptop, 'example.com');
  s.say(`laptop$ dig @${DNS} example.com  ->  status ${out}`);
  s.expect(out === 'REFUSED', 'no recursion for clients outside the cluster');

  s.step('web leaves (CNI DEL)');
  await cni(node, 'tsbridge', 'DEL', conf, { containerId: 'ctr-web', netns: web, podName: 'web' });
  const nx = await until(async () => ((await status(laptop, 'web.front.tsoverlay')) === 'NXDOMAIN' ? true : undefined), 10_000, 250);
  s.expect(nx === true, '"web.front.tsoverlay" is NXDOMAIN now');
}

await runScenario('dns-etcd', 'Example: a standalone DNS over etcd (container names, services, SkyDNS records)', main);
