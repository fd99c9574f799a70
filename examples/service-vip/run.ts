// A load-balanced web service behind one virtual IP (the idea of the book's ch. 24.6, without a
// proxy container): three web containers on a tsbridge CNI network, a service VIP spreading new
// connections over them, a client machine and a container on the network reaching it.
// Run: sudo npx tsx examples/service-vip/run.ts   (see README.md)
import { curl, cni, httpEcho, resultIp, startDaemon, tsoverlay, type Daemon } from '../lib/tsoverlay.js';
import { runScenario, type Netns, type Scenario } from '../lib/scenario.js';

const VIP = '10.96.0.10';
const SUBNET = '10.88.0.0/24';
const GATEWAY = '10.88.0.1';

/** The network config a runtime would read from /etc/cni/net.d (one plugin, no portmap). */
function webnet(d: Daemon) {
  return {
    cniVersion: '1.0.0',
    name: 'webnet',
    type: 'tsbridge',
    bridge: 'tsbr-web',
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    hairpinMode: true,
    store: d.store,
    daemonSocket: d.socket,
    ipam: { type: 'tsipam', ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]] },
  };
}

/** `count` requests (one connection each: the server closes it) → answers per back end. */
async function spread(client: Netns, count: number): Promise<Map<string, number>> {
  const r = await client.tryExec('curl', ['-sS', '-m', '2', ...Array.from({ length: count }, () => `http://${VIP}/`)], { timeoutMs: 60_000 });
  const hits = new Map<string, number>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const name = line.split(' ')[0]!;
    hits.set(name, (hits.get(name) ?? 0) + 1);
  }
  return hits;
}

const show = (hits: Map<string, number>) => [...hits].sort().map(([n, c]) => `${n}=${c}`).join(' ');

async function main(s: Scenario): Promise<void> {
  s.step('a host running the tsoverlay daemon, and a client machine on its LAN');
  const host = await s.netns('host');
  const client = await s.netns('client');
  await s.veth(host, 'lan0', '192.168.60.1/24', client, 'eth0', '192.168.60.2/24');
  // The client sends service traffic to the host, as it would to any router of the cluster.
  await client.ip('route', 'add', '10.96.0.0/16', 'via', '192.168.60.1');
  const d = await startDaemon(s, host, { hostId: 'node1' });
  s.say(`daemon ready (store ${d.store})`);

  s.step('three web containers and one shop container on the CNI network "webnet" (tsbridge + tsipam)');
  const names = ['web1', 'web2', 'web3', 'shop'];
  const ns = await Promise.all(names.map((n) => s.netns(n)));
  const results = await Promise.all(names.map((n, i) => cni(host, 'tsbridge', 'ADD', webnet(d), { containerId: `ctr-${n}`, netns: ns[i]!, podName: n })));
  names.forEach((n, i) => s.say(`${n}: ${resultIp(results[i])}`));
  await Promise.all(ns.slice(0, 3).map((c, i) => httpEcho(s, c, names[i]!, 80)));
  const [web1, , , shop] = ns as [Netns, Netns, Netns, Netns];
  const direct = await curl(client, `http://${resultIp(results[0])}/`, 2);
  s.expect(direct === undefined, 'the client cannot reach a container directly (the network is masqueraded, nothing published)');

  s.step(`tsoverlay service create web --vip ${VIP} --port 80 --endpoint web1 --endpoint web2`);
  s.say((await tsoverlay(['service', 'create', 'web', '--store', d.store, '--vip', VIP, '--port', '80', '--endpoint', 'web1', '--endpoint', 'web2'])).trim());
  let hits = new Map<string, number>();
  for (let i = 0; i < 25 && (hits.get('web1') ?? 0) === 0; i++) hits = await spread(client, i === 0 ? 30 : 1);
  hits = await spread(client, 30);
  s.say(`30 requests from the client: ${show(hits)}`);
  s.expect((hits.get('web1') ?? 0) > 0 && (hits.get('web2') ?? 0) > 0 && !hits.has('web3'), 'new connections are spread over web1 and web2 only');
  const sample = (await curl(client, `http://${VIP}/`)) ?? '';
  s.say(`one answer: ${sample.trim()}`);
  s.expect(/ answered 192\.168\.60\.2$/.test(sample.trim()), 'the back end sees the client\'s own address (no proxy in between)');

  s.step('tsoverlay service add-backend web web3   (scale out)');
  s.say((await tsoverlay(['service', 'add-backend', 'web', 'web3', '--store', d.store])).trim());
  for (let i = 0; i < 50 && !hits.has('web3'); i++) hits = await spread(client, i === 0 ? 30 : 3);
  hits = await spread(client, 30);
  s.say(`30 requests from the client: ${show(hits)}`);
  s.expect(['web1', 'web2', 'web3'].every((n) => (hits.get(n) ?? 0) > 0), 'all three back ends answer');

  s.step('from a container on the same network: the name "web" resolves to the VIP at the gateway\'s DNS');
  const dig = await shop.tryExec('dig', ['+short', '+time=1', '+tries=2', `@${GATEWAY}`, 'web.tsoverlay.']);
  s.say(`shop$ dig +short @${GATEWAY} web.tsoverlay  ->  ${dig.stdout.trim()}`);
  s.expect(dig.stdout.trim() === VIP, 'the service name answers the VIP');
  const fromShop = (await curl(shop, `http://${VIP}/`)) ?? '';
  s.say(`shop$ curl http://${VIP}/  ->  ${fromShop.trim()}`);
  s.expect(/^web\d /.test(fromShop), 'a container reaches the VIP too (hairpin through the host)');

  s.step('tsoverlay service ls');
  s.say((await tsoverlay(['service', 'ls', '--store', d.store])).trimEnd());

  s.step('tsoverlay service rm web');
  s.say((await tsoverlay(['service', 'rm', 'web', '--store', d.store])).trim());
  let gone = false;
  for (let i = 0; i < 25 && !gone; i++) gone = (await curl(client, `http://${VIP}/`, 1)) === undefined;
  s.expect(gone, 'the VIP answers no more');
  s.expect((await curl(web1, 'http://127.0.0.1/')) !== undefined, 'the containers themselves keep running');
}

await runScenario('service-vip', 'Example: a load-balanced web service behind a virtual IP', main);
