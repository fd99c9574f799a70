// netlink/ VXLAN + FDB against the real kernel: two "host" namespaces joined by an underlay veth,
// a container on each, peers programmed statically (FDB self dst + master static + neighbour), ping across.
import test from 'ava';
import type { NetnsHandle } from '../../netlink/index.js';
import { ping, spaces } from './fixture.js';

interface Peer {
  vtep: string;
  ip: string;
  mac: string;
}

/** One host's overlay: bridge + VXLAN (no learning, ARP proxy) + a container on the bridge. */
async function overlayHost(host: NetnsHandle, ctr: NetnsHandle, vtep: string, me: Peer): Promise<void> {
  await host.ensureBridge('br42', { mtu: 1450 });
  await host.batch((b) =>
    b
      .linkAdd({ kind: 'vxlan', name: 'vx42', vni: 42, local: vtep, dev: 'u0', learning: false, proxy: true, mtu: 1450, master: 'br42', up: true })
      .linkAdd({ kind: 'veth', name: 've42', mtu: 1450, master: 'br42', up: true, peer: { name: 'eth0', netns: ctr.path!, mac: me.mac, mtu: 1450 } }),
  );
  await ctr.batch((b) => b.addrAdd('eth0', `${me.ip}/24`).linkSetUp('eth0'));
}

/** What the overlay driver does for a remote endpoint: FDB self (MAC → VTEP), FDB master, neighbour. */
async function programPeer(host: NetnsHandle, p: Peer): Promise<void> {
  await host.batch((b) =>
    b
      .fdbReplace({ mac: p.mac, dev: 'vx42', dst: p.vtep, target: 'self' })
      .fdbReplace({ mac: p.mac, dev: 'vx42', target: 'master', state: 'static' })
      .neighReplace({ dst: p.ip, lladdr: p.mac, dev: 'vx42' }),
  );
}

test('ping across VXLAN between two host namespaces, peers programmed with no flooding', async (t) => {
  const { hA, hB, cA, cB } = await spaces(t, 'vx', ['hA', 'hB', 'cA', 'cB']);
  // Underlay: one veth between the hosts, created from hA with its peer straight in hB.
  await hA.h.batch((b) => b.linkAdd({ kind: 'veth', name: 'u0', up: true, peer: { name: 'u0', netns: hB.h.path! } }).addrAdd('u0', '192.168.42.1/24'));
  await hB.h.batch((b) => b.addrAdd('u0', '192.168.42.2/24').linkSetUp('u0'));
  const a: Peer = { vtep: '192.168.42.1', ip: '10.42.0.2', mac: '02:42:0a:2a:00:02' };
  const bb: Peer = { vtep: '192.168.42.2', ip: '10.42.0.3', mac: '02:42:0a:2a:00:03' };
  await Promise.all([overlayHost(hA.h, cA.h, a.vtep, a), overlayHost(hB.h, cB.h, bb.vtep, bb)]);
  await Promise.all([programPeer(hA.h, bb), programPeer(hB.h, a)]);

  const vx = await hA.h.link('vx42');
  t.like(vx, { kind: 'vxlan', master: 'br42', vxlan: { vni: 42, local: '192.168.42.1', port: 4789, learning: false, dev: 'u0' } });
  const fdb = await hA.h.fdb({ dev: 'vx42' });
  t.truthy(fdb.find((e) => e.self && e.mac === bb.mac && e.dst === bb.vtep && e.state === 'permanent'));
  t.truthy(fdb.find((e) => !e.self && e.mac === bb.mac && e.master === 'br42' && e.state === 'static'));
  t.false(fdb.some((e) => e.mac === '00:00:00:00:00:00'), 'no flood entry: unknown MACs go nowhere');
  t.regex(await hA.ns.exec('bridge', ['fdb', 'show', 'dev', 'vx42']), new RegExp(`${bb.mac} dst ${bb.vtep} self permanent`));
  t.like((await hA.h.neighbours({ dev: 'vx42' }))[0], { dst: bb.ip, lladdr: bb.mac, permanent: true });

  t.true(await ping(cA.ns, bb.ip), 'A → B over VXLAN');
  t.true(await ping(cB.ns, a.ip), 'B → A over VXLAN');
  t.false(await ping(cA.ns, '10.42.0.99', 1), 'an unprogrammed address is not reachable (no flooding)');

  // Removing the peer's FDB entries cuts it off.
  await hA.h.batch((b) => b.fdbDel({ mac: bb.mac, dev: 'vx42', dst: bb.vtep, target: 'self' }).fdbDel({ mac: bb.mac, dev: 'vx42', target: 'master' }));
  t.false((await hA.h.fdb({ dev: 'vx42' })).some((e) => e.mac === bb.mac));
});
