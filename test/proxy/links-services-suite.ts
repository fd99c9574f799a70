// Links on an ICC-off network and service VIPs, in namespaces with real echo servers:
// the linked port opens (and nothing else), 1,000 connections spread over backends, affinity,
// hairpin to a VIP, a removed backend gets no new connection and loses its UDP flows.
import test from 'ava';
import { ProxyError } from '../../proxy/errors.js';
import type { BackendKind } from '../../proxy/backend.js';
import { BACKEND_OPS, containerIp, HOST_IP, makeTopo, probe, reach, saveAll, type Topo } from './topo.js';

/** The links and services kernel suite, run once per backend (one entry file each). */
export function linksServicesSuite(kind: BackendKind): void {
  const ops = BACKEND_OPS[kind];

  let topo: Topo;
  let rootBefore: string;
  const VIP = '10.96.0.10';

  test.before(async () => {
    rootBefore = await saveAll();
    topo = await makeTopo(kind === 'nft' ? 'lsn' : 'ls', 4, { icc: false }, kind);
    for (let i = 0; i < 4; i++) await topo.serve(topo.containers[i]!, `c${i}`, [80, 5432], [53]);
    // Other hosts reach VIPs through this host.
    await topo.nb.ip('route', 'add', '10.96.0.0/16', 'via', HOST_IP);
  });

  test.after.always(async () => {
    await topo?.cleanup();
  });

  const link = () => ({ networkId: 'net1', fromEndpoint: 'ep0', toEndpoint: 'ep1', fromIp: containerIp(0), toIp: containerIp(1), ports: [{ proto: 'tcp' as const, port: 5432 }] });

  test.serial(`${kind}: ` + 'ICC off: containers cannot talk; a link opens exactly the target\'s exposed port', async (t) => {
    const [c0, c1, c2] = topo.containers as [Topo['nb'], Topo['nb'], Topo['nb']];
    t.is(await reach(c0, 'tcp', containerIp(1), 5432, 700), 'ERR:TIMEOUT', 'ICC off');
    await topo.fw.setLink(link());
    t.is(await reach(c0, 'tcp', containerIp(1), 5432), `c1 ${containerIp(0)}`, 'linked port open');
    t.is(await reach(c0, 'tcp', containerIp(1), 80, 700), 'ERR:TIMEOUT', 'a port the target does not expose');
    t.is(await reach(c2, 'tcp', containerIp(1), 5432, 700), 'ERR:TIMEOUT', 'another container');
    t.is(await reach(c1, 'tcp', containerIp(0), 80, 700), 'ERR:TIMEOUT', 'the target cannot open anything toward the source');
    t.is(await reach(c1, 'tcp', containerIp(0), 5432, 700), 'ERR:TIMEOUT', 'the --sport rule only carries the linked service\'s answers');
    await topo.fw.removeLink('net1', 'ep0', 'ep1');
    t.is(await reach(c0, 'tcp', containerIp(1), 5432, 700), 'ERR:TIMEOUT', 'closed again');
    await t.throwsAsync(topo.fw.setLink({ ...link(), toIp: '10.1.1.1' }), { instanceOf: ProxyError, code: 'invalid-address' });
    await t.throwsAsync(topo.fw.setLink({ ...link(), toEndpoint: 'ghost' }), { instanceOf: ProxyError, code: 'unknown-endpoint' });
  });

  test.serial(`${kind}: ` + 'a service VIP spreads 1,000 connections evenly over its backends (±20 %)', async (t) => {
    await topo.fw.setService({ name: 'web', vip: VIP, ports: [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 53 }], backends: [0, 1, 2].map(containerIp) });
    const replies = await probe(topo.nb, 'tcp', VIP, 80, 1000, 1500);
    const counts = new Map<string, number>();
    for (const r of replies) counts.set(r.split(' ')[0]!, (counts.get(r.split(' ')[0]!) ?? 0) + 1);
    t.deepEqual([...counts.keys()].sort(), ['c0', 'c1', 'c2'], JSON.stringify([...counts]));
    for (const [name, n] of counts) t.true(n >= 267 && n <= 400, `${name}: ${n} of 1000`);
    t.log(JSON.stringify(Object.fromEntries(counts)));
  });

  test.serial(`${kind}: ` + 'hairpin through a VIP, and from the host itself', async (t) => {
    const fromBackend = await probe(topo.containers[0]!, 'tcp', VIP, 80, 30);
    t.true(fromBackend.every((r) => /^c[012] /.test(r)), fromBackend.join());
    t.true(fromBackend.some((r) => r.startsWith('c0 ')), 'some land on the client itself');
    await topo.host.ip('route', 'add', '10.96.0.0/16', 'dev', 'tsbr0');
    t.regex(await reach(topo.host, 'tcp', VIP, 80), /^c[012] /);
  });

  test.serial(`${kind}: ` + 'a backend that goes away gets no new connection, and its UDP flows are flushed', async (t) => {
    // The same UDP source port keeps its conntrack entry, so it keeps its backend…
    const sticky = await probe(topo.nb, 'udp', VIP, 53, 3, 1500, 40000);
    t.is(new Set(sticky.map((r) => r.split(' ')[0])).size, 1, sticky.join());
    const pinned = sticky[0]!.split(' ')[0]!;
    const pinnedIndex = Number(pinned.slice(1));
    // …until that backend leaves the service: then the entry is flushed and it moves.
    await topo.fw.setService({ name: 'web', vip: VIP, ports: [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 53 }], backends: [0, 1, 2].filter((i) => i !== pinnedIndex).map(containerIp) });
    const after = await probe(topo.nb, 'udp', VIP, 53, 3, 1500, 40000);
    t.false(after.some((r) => r.startsWith(`${pinned} `)), `pinned ${pinned}, after: ${after.join()}`);
    const tcp = await probe(topo.nb, 'tcp', VIP, 80, 200);
    t.false(tcp.some((r) => r.startsWith(`${pinned} `)), 'no new TCP connection to the removed backend');
    t.true(tcp.every((r) => /^c[012] /.test(r)));
  });

  test.serial(`${kind}: ` + 'client-IP affinity keeps one client on one backend; removing the service closes the VIP', async (t) => {
    await topo.fw.setService({ name: 'web', vip: VIP, ports: [{ proto: 'tcp', port: 80 }], backends: [0, 1, 2, 3].map(containerIp), affinitySeconds: 60 });
    const replies = await probe(topo.nb, 'tcp', VIP, 80, 40);
    t.is(new Set(replies.map((r) => r.split(' ')[0])).size, 1, replies.join());
    await topo.fw.removeService('web');
    t.regex(await reach(topo.nb, 'tcp', VIP, 80, 700), /^ERR:/);
    t.false((await saveAll(topo.host)).includes(ops.svcMarker), 'its chains are gone');
  });

  test.serial(`${kind}: ` + 'the root namespace firewall is unchanged', async (t) => {
    t.is(await saveAll(), rootBefore);
  });
}
