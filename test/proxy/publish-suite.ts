// Port publishing in namespaces with real TCP/UDP echo servers: every -p form, from a neighbour,
// from the host, 127.0.0.1 (and the neighbour that must not reach it), hairpin, conflicts and bad
// input (nothing applied), the reconciler repairing a flushed chain. The root firewall is untouched.
import test from 'ava';
import { ProxyError, type ProxyErrorCode } from '../../proxy/errors.js';
import { Firewall } from '../../proxy/firewall.js';
import { fromDockerPortMap, parsePortSpec, publishAll } from '../../proxy/ports.js';
import { totalStats, type BackendKind } from '../../proxy/backend.js';
import { BACKEND_OPS, NFT_BIN, containerIp, containerIp6, HOST_IP, HOST_IP6, makeTopo, NB_IP, reach, saveAll, type Topo } from './topo.js';

/** The port-publishing kernel suite, run once per backend (one entry file each). */
export function publishSuite(kind: BackendKind): void {
  const ops = BACKEND_OPS[kind];

  let topo: Topo;
  let rootBefore: string;

  const pub = (ep: number, specs: string[]) =>
    topo.fw.publish(`ep${ep}`, { networkId: 'net1', containerIp: containerIp(ep), containerIpv6: containerIp6(ep), mappings: specs.flatMap(parsePortSpec) });

  test.before(async () => {
    rootBefore = await saveAll();
    topo = await makeTopo(kind === 'nft' ? 'pxn' : 'px', 2, {}, kind);
    await topo.serve(topo.containers[0]!, 'c0', [80, 81, 82], [53]);
    await topo.serve(topo.containers[1]!, 'c1', [80], [53]);
  });

  test.after.always(async () => {
    await topo?.cleanup();
  });

  test.serial(`${kind}: ` + 'hostPort:containerPort, TCP and UDP, IPv4 and IPv6: from a neighbour and from the host', async (t) => {
    const b = await pub(0, ['8080:80', '5300:53/udp']);
    t.deepEqual(b.map((x) => `${x.proto} ${x.hostIp}:${x.hostPort}`).sort(), ['tcp 0.0.0.0:8080', 'tcp :::8080', 'udp 0.0.0.0:5300', 'udp :::5300']);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`, 'the client address is kept');
    t.is(await reach(topo.nb, 'udp', HOST_IP, 5300), `c0 ${NB_IP}`);
    // IPv6's first packets wait for neighbour discovery on both hops: give them time on a loaded machine.
    t.is(await reach(topo.nb, 'tcp', HOST_IP6, 8080, 5000), 'c0 fd77::2');
    t.is(await reach(topo.nb, 'udp', HOST_IP6, 5300, 5000), 'c0 fd77::2');
    t.regex(await reach(topo.host, 'tcp', HOST_IP, 8080), /^c0 /, 'from the host itself (OUTPUT)');
    t.regex(await reach(topo.host, 'udp', HOST_IP, 5300), /^c0 /);
  });

  // A DEL through the daemon ran beside a periodic reconcile's bulk(): its unpublish landed in the
  // reconcile's deferred set and the DEL returned with its rules still in place (a CI failure).
  test.serial(`${kind}: ` + "a publish and unpublish beside another caller's open bulk() are applied when they return", async (t) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const other = topo.fw.bulk(() => held);
    try {
      await pub(1, ['8097:80']);
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8097), `c1 ${NB_IP}`, 'published before the other bulk ends');
      await topo.fw.unpublish('ep1');
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8097, 700), 'ERR:ECONNREFUSED', 'unpublished before the other bulk ends');
      // Inside a bulk the changes wait for its end, and a bulk() within it joins it.
      await topo.fw.bulk(async () => {
        await topo.fw.bulk(() => pub(1, ['8097:80']));
        t.is(await reach(topo.nb, 'tcp', HOST_IP, 8097, 700), 'ERR:ECONNREFUSED', 'deferred inside the bulk');
      });
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8097), `c1 ${NB_IP}`, 'applied when the bulk returns');
      await topo.fw.unpublish('ep1');
    } finally {
      release();
      await other;
    }
  });

  // nft runs every base chain at a hook: an accept in our table does not override the DROP
  // policy dockerd (and makeTopo) set in iptables' FORWARD. The backend relays its accepts there.
  if (kind === 'nft') {
    test.serial('nft: an iptables FORWARD DROP policy is passed through the mark relay, which the reconciler restores', async (t) => {
      const relay = ['FORWARD', '-m', 'mark', '--mark', '0x2000/0x2000', '-j', 'ACCEPT'];
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`);
      await topo.host.exec('iptables', ['-D', ...relay]);
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080, 700), 'ERR:TIMEOUT', 'without the relay the DROP policy wins');
      t.is(totalStats(await topo.fw.reconcile()).patched, 1);
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`);
      t.is((await topo.host.exec('iptables', ['-S', 'FORWARD'])).split('\n').filter((l) => l.includes('0x2000/0x2000')).length, 1, 'appended once');
    });

    test.serial('nft: a change after our table was deleted restores the whole table, not only the change', async (t) => {
      await topo.host.exec(NFT_BIN, ['delete', 'table', 'inet', 'tsoverlay']);
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080, 700), 'ERR:ECONNREFUSED', 'deleted: nothing published');
      await topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: parsePortSpec('8090:80') });
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8090), `c1 ${NB_IP}`, 'the change');
      t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`, 'and what was there before');
    });
  }

  test.serial(`${kind}: ` + 'ip:hostPort:containerPort binds that address only; Docker wire form', async (t) => {
    await topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: fromDockerPortMap([{ Proto: 6, Port: 80, HostIP: HOST_IP, HostPort: 9090, HostPortEnd: 9090 }]) });
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 9090), `c1 ${NB_IP}`);
    t.is(await reach(topo.host, 'tcp', '172.30.0.1', 9090), 'ERR:ECONNREFUSED', 'another local address is not mapped');
  });

  test.serial(`${kind}: ` + 'ip::containerPort and -P take random ports from the range', async (t) => {
    const b = await topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: [...parsePortSpec(`${HOST_IP}::80`), ...publishAll([{ Proto: 6, Port: 80 }, { Proto: 17, Port: 53 }])] });
    t.is(b.length, 3);
    for (const x of b) t.true(x.hostPort >= 49153 && x.hostPort <= 65535, String(x.hostPort));
    t.is(new Set(b.map((x) => `${x.proto}/${x.hostPort}`)).size, 3, 'distinct host ports');
    for (const x of b) t.is(await reach(topo.nb, x.proto as 'tcp' | 'udp', HOST_IP, x.hostPort), `c1 ${NB_IP}`, `${x.proto}/${x.hostPort}`);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 9090), 'ERR:ECONNREFUSED', 'the replaced mapping is gone');
  });

  test.serial(`${kind}: ` + 'only packets addressed to a local address are DNAT\'d (CVE-2025-67499)', async (t) => {
    // The neighbour routes another network through the host: port 8080 there is not ours to take.
    await topo.nb.ip('route', 'add', '10.88.0.0/24', 'via', HOST_IP);
    t.regex(await reach(topo.nb, 'tcp', '10.88.0.1', 8080, 700), /^ERR:/);
    t.regex(await reach(topo.nb, 'tcp', containerIp(0), 8080, 700), /^ERR:/, 'nor the container address on the host port');
  });

  test.serial(`${kind}: ` + 'ranges map one to one', async (t) => {
    await pub(0, ['8080:80', '5300:53/udp', '8000-8002:80-82']);
    for (const p of [8000, 8001, 8002]) t.is(await reach(topo.nb, 'tcp', HOST_IP, p), `c0 ${NB_IP}`, String(p));
  });

  test.serial(`${kind}: ` + 'a second firewall on the namespace (a new process) adds to a shared bucket without flushing it', async (t) => {
    const fw2 = new Firewall({ netnsPath: topo.host.path, backend: kind });
    t.teardown(() => fw2.close());
    await fw2.setNetwork({ id: 'net1', bridge: 'tsbr0', subnets: ['172.30.0.0/24', 'fd30::/64'] });
    await fw2.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: parsePortSpec('8081:80') });
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8081), `c1 ${NB_IP}`);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`, 'the mapping beside it (same bucket chain or map) is still there');
    await topo.fw.reconcile();
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8081, 700), 'ERR:ECONNREFUSED', 'the owner reconciles it away again');
  });

  test.serial(`${kind}: ` + '127.0.0.1 publishing: the host reaches it, a neighbour routing to 127.0.0.1 does not', async (t) => {
    await pub(0, ['8080:80', '5300:53/udp', '127.0.0.1:7070:80']);
    t.is(await reach(topo.host, 'tcp', '127.0.0.1', 7070), 'c0 172.30.0.1', 'masqueraded to the bridge address');
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 7070), 'ERR:ECONNREFUSED', 'not on the host address');
    // The neighbour sends to 127.0.0.1 through the host (moby#45610's test idea): drop its own
    // loopback routes, allow loopback addresses on its link, route 127.0.0.1 via the host.
    await topo.nb.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.all.route_localnet=1', 'net.ipv4.conf.un.route_localnet=1']);
    await topo.nb.ip('route', 'del', 'local', '127.0.0.1', 'dev', 'lo', 'table', 'local');
    await topo.nb.ip('route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local');
    await topo.nb.ip('route', 'add', '127.0.0.1/32', 'via', HOST_IP, 'dev', 'un', 'src', NB_IP);
    const dnatted = async () => {
      const r = await topo.host.tryExec('conntrack', ['-L', '-p', 'tcp', '--orig-dst', '127.0.0.1', '--orig-port-dst', '7070', '--reply-src', containerIp(0)]);
      return r.stdout.includes(`src=${NB_IP}`);
    };
    await topo.host.exec('conntrack', ['-F']);
    t.is(await reach(topo.nb, 'tcp', '127.0.0.1', 7070, 800), 'ERR:TIMEOUT', 'CVE-2020-8558: dropped');
    t.false(await dnatted(), 'nothing of it reached the container');
    // Negative control: without the raw-table drop the same packets are DNAT'd into the container
    // (which answers; the answer from 127.0.0.1 then dies at the neighbour as a martian).
    await ops.flushRawDrop(topo.host);
    await reach(topo.nb, 'tcp', '127.0.0.1', 7070, 800);
    t.true(await dnatted(), 'the trick works: the drop is what stops it');
    const fixed = await topo.fw.reconcile();
    t.is(totalStats(fixed).rewritten, 1);
    await topo.host.exec('conntrack', ['-F']);
    t.is(await reach(topo.nb, 'tcp', '127.0.0.1', 7070, 800), 'ERR:TIMEOUT');
    t.false(await dnatted(), 'repaired by the reconciler');
  });

  test.serial(`${kind}: ` + 'hairpin: a container reaches its own and a neighbour container\'s published port on the host address', async (t) => {
    const [c0, c1] = topo.containers as [typeof topo.nb, typeof topo.nb];
    t.is(await reach(c0, 'tcp', HOST_IP, 8080), 'c0 172.30.0.1');
    t.is(await reach(c1, 'tcp', HOST_IP, 8080), 'c0 172.30.0.1');
    t.is(await reach(c0, 'udp', HOST_IP, 5300), 'c0 172.30.0.1');
    t.is(await reach(c0, 'tcp', HOST_IP6, 8080), 'c0 fd30::1');
  });

  test.serial(`${kind}: ` + 'conflicts and bad input are clear errors and apply nothing', async (t) => {
    const before = await saveAll(topo.host);
    const bad: [() => Promise<unknown>, ProxyErrorCode][] = [
      [() => pub(1, ['8080:80']), 'port-taken'],
      [() => pub(1, [`${HOST_IP}:8080:80`]), 'port-taken'],
      [() => pub(1, ['9999:80', '8080:80']), 'port-taken'],
      [() => pub(1, ['10.77.0.99:9998:80']), 'host-ip-not-local'],
      [() => pub(1, ['[::1]:9997:80']), 'invalid-address'],
      [() => topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: [{ proto: 'tcp', containerPort: 0, hostIp: '', hostPort: 1, hostPortEnd: 1 }] }), 'invalid-port'],
      [() => topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 70000, hostPortEnd: 70000 }] }), 'invalid-port'],
      [() => topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 9000, hostPortEnd: 8990 }] }), 'invalid-range'],
      [() => topo.fw.publish('ep1', { networkId: 'net1', containerIp: containerIp(1), mappings: [{ proto: 'gre' as never, containerPort: 80, hostIp: '', hostPort: 9000, hostPortEnd: 9000 }] }), 'invalid-protocol'],
      [() => topo.fw.publish('ghost', { networkId: 'net1', containerIp: '172.30.0.99', mappings: parsePortSpec('9996:80') }), 'unknown-endpoint'],
      [() => topo.fw.publish('ep1', { networkId: 'nope', containerIp: containerIp(1), mappings: parsePortSpec('9995:80') }), 'unknown-network'],
      [() => topo.fw.publish('ep1', { networkId: 'net1', containerIp: '10.9.9.9', mappings: parsePortSpec('9994:80') }), 'invalid-address'],
    ];
    for (const [call, code] of bad) {
      const err = await t.throwsAsync(call, { instanceOf: ProxyError });
      t.is(err?.code, code, err?.message);
    }
    t.is(await saveAll(topo.host), before, 'the kernel tables did not change');
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 9999), 'ERR:ECONNREFUSED');
    // 9999 was not left reserved by the failed call.
    topo.endpoints.add('ep9');
    t.is((await topo.fw.publish('ep9', { networkId: 'net1', containerIp: containerIp(1), mappings: parsePortSpec('9999:80') }))[0]!.hostPort, 9999);
    await topo.fw.unpublish('ep9');
  });

  test.serial(`${kind}: ` + 'the reconciler restores a flushed chain and removes stale ones', async (t) => {
    await ops.flushPublished(topo.host);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080, 800), 'ERR:ECONNREFUSED', 'flushed: not published any more');
    await ops.breakStale(topo.host);
    // Someone else's chain, installed while ours was missing: ours must come after it (CVE-2019-9946).
    await topo.host.exec('iptables', ['-t', 'filter', '-N', 'OTHER-FORWARD']);
    await topo.host.exec('iptables', ['-t', 'filter', '-A', 'FORWARD', '-j', 'OTHER-FORWARD']);
    const stats = await topo.fw.reconcile();
    t.true(totalStats(stats).deleted >= 1);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c0 ${NB_IP}`);
    const dump = await saveAll(topo.host);
    t.false(ops.hasStale(dump));
    // iptables: the jump is appended again after the other; nft: our forward chain is back, and
    // iptables' FORWARD keeps the relay of our accepts after the other chain's jump.
    if (kind === 'iptables') t.regex(dump, /^-A FORWARD -j OTHER-FORWARD\n-A FORWARD -j TSO-FORWARD$/m, 'the FORWARD jump is appended again, after the other');
    else t.regex(dump, /^\tchain filter-forward \{$/m);
    t.is(totalStats(await topo.fw.reconcile()).lines, 0, 'a second pass finds nothing to do');
  });

  test.serial(`${kind}: ` + 'the periodic reconciler repairs a firewalld-style flush by itself', async (t) => {
    const errors: unknown[] = [];
    const stop = topo.fw.startReconciler(150, (e) => errors.push(e));
    t.teardown(stop);
    await ops.flushAll(topo.host);
    let reply = '';
    for (let i = 0; i < 20 && reply !== `c0 ${NB_IP}`; i++) {
      await new Promise((r) => setTimeout(r, 100));
      reply = await reach(topo.nb, 'tcp', HOST_IP, 8080, 500);
    }
    stop();
    t.is(reply, `c0 ${NB_IP}`);
    t.deepEqual(errors, []);
  });

  test.serial(`${kind}: ` + 'unpublish removes the rules and frees the port', async (t) => {
    await topo.fw.unpublish('ep0');
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080, 800), 'ERR:ECONNREFUSED');
    t.deepEqual(topo.fw.bindings('ep0'), []);
    await pub(1, ['8080:80']);
    t.is(await reach(topo.nb, 'tcp', HOST_IP, 8080), `c1 ${NB_IP}`);
    t.false((await saveAll(topo.host)).includes(containerIp(0)), 'nothing of ep0 is left');
  });

  test.serial(`${kind}: ` + 'the root namespace firewall is unchanged', async (t) => {
    t.is(await saveAll(), rootBefore);
  });
}
