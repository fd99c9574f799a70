// Two hosts sharing one overlay network through etcd (the book's ch. 21.3, with tsoverlay in
// place of Docker's overlay driver): c1 on host1 and c2 on host2 get addresses of one subnet,
// an MTU of 1450, and reach each other by name across the VXLAN.
// Run: sudo npx tsx examples/overlay-two-hosts/run.ts   (see README.md)
import { cni, resultIp, startDaemon, startEtcd, tsoverlay, until, type Daemon } from '../lib/tsoverlay.js';
import { runScenario, type Netns, type Scenario } from '../lib/scenario.js';

const SUBNET = '10.0.0.0/24';
const GATEWAY = '10.0.0.1';

/** The CNI network both hosts use (the same file on each, pointing at its own daemon). */
function multi(d: Daemon) {
  return {
    cniVersion: '1.0.0',
    name: 'multi',
    type: 'tsoverlay',
    store: d.store,
    daemonSocket: d.socket,
    ipam: { type: 'tsipam', ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
}

/** `ping -c 2 NAME` inside a container, names resolved by its resolv.conf → the address pinged, or undefined. */
async function pingByName(ctr: Netns, name: string): Promise<{ ip?: string; output: string }> {
  const r = await ctr.tryExecWithNames('ping', ['-c', '2', '-W', '2', name], { timeoutMs: 20_000 });
  const ip = /^PING \S+ \(([\d.]+)\)/m.exec(r.stdout)?.[1];
  return { ip: r.code === 0 ? ip : undefined, output: (r.stdout + r.stderr).trim() };
}

async function main(s: Scenario): Promise<void> {
  s.step('two hosts on one underlay (192.168.50.0/24); etcd on host1 is the cluster store');
  const h1 = await s.netns('host1');
  const h2 = await s.netns('host2');
  await s.veth(h1, 'eth0', '192.168.50.1/24', h2, 'eth0', '192.168.50.2/24');
  const etcd = await startEtcd(s, h1, '192.168.50.1');
  const store = `etcd://192.168.50.1:2379`;
  s.say(`etcd serving ${etcd}`);

  s.step(`tsoverlay daemon on each host: --store ${store} --advertise <its underlay address>`);
  const [d1, d2] = await Promise.all([
    startDaemon(s, h1, { hostId: 'host1', store, extraArgs: ['--advertise', '192.168.50.1'] }),
    startDaemon(s, h2, { hostId: 'host2', store, extraArgs: ['--advertise', '192.168.50.2'] }),
  ]);
  s.say((await tsoverlay(['host', 'ls', '--store', store], h2)).trimEnd());

  s.step('c1 on host1 and c2 on host2 join the overlay network "multi" (CNI: tsoverlay + tsipam)');
  const c1 = await s.netns('c1');
  const c2 = await s.netns('c2');
  const r1 = await cni(h1, 'tsoverlay', 'ADD', multi(d1!), { containerId: 'ctr-c1', netns: c1, podName: 'c1' });
  const r2 = await cni(h2, 'tsoverlay', 'ADD', multi(d2!), { containerId: 'ctr-c2', netns: c2, podName: 'c2' });
  for (const [name, ctr] of [['c1', c1], ['c2', c2]] as const) {
    s.say(`${name}$ ip addr show eth0\n${(await ctr.ip('-br', 'addr', 'show', 'eth0')).trim()}   mtu ${/mtu (\d+)/.exec(await ctr.ip('link', 'show', 'eth0'))?.[1]}`);
  }
  const [ip1, ip2] = [resultIp(r1), resultIp(r2)];
  s.expect(ip1 !== ip2 && ip1.startsWith('10.0.0.') && ip2.startsWith('10.0.0.'), `one subnet across hosts: c1 ${ip1}, c2 ${ip2}`);
  s.expect(/mtu 1450/.test(await c2.ip('link', 'show', 'eth0')), 'the overlay MTU is 1450 (1500 minus the VXLAN header)');
  s.say((await tsoverlay(['endpoint', 'ls', '--store', store], h1)).trimEnd());

  s.step('each container asks its own host\'s DNS (the gateway address); ping by name across the hosts');
  s.resolvConf(c1, [GATEWAY], ['multi.tsoverlay']);
  s.resolvConf(c2, [GATEWAY], ['multi.tsoverlay']);
  // The peers learn each other from etcd within a moment: retry briefly.
  const fromC2 = (await until(async () => {
    const p = await pingByName(c2, 'c1');
    return p.ip ? p : undefined;
  }, 20_000, 500)) ?? (await pingByName(c2, 'c1'));
  s.say(`c2$ ping -c 2 c1\n${fromC2.output}`);
  s.expect(fromC2.ip === ip1, `from c2 on host2, "c1" resolves to ${ip1} and answers`);
  const fromC1 = await pingByName(c1, 'c2.multi.tsoverlay');
  s.say(`c1$ ping -c 2 c2.multi.tsoverlay\n${fromC1.output.split('\n').slice(0, 2).join('\n')}`);
  s.expect(fromC1.ip === ip2, `from c1 on host1, "c2.multi.tsoverlay" resolves to ${ip2} and answers`);

  s.step('c2 leaves (CNI DEL): host1 forgets it');
  await cni(h2, 'tsoverlay', 'DEL', multi(d2!), { containerId: 'ctr-c2', netns: c2, podName: 'c2' });
  const gone = await until(async () => ((await pingByName(c1, 'c2')).ip === undefined ? true : undefined), 15_000, 500);
  s.expect(gone === true, '"c2" no longer resolves or answers from c1');
}

await runScenario('overlay-two-hosts', 'Example: two hosts sharing an overlay network, names resolving across them', main);
