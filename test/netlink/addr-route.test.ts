// netlink/ addresses, routes, neighbours and sysctl against the real kernel, plus pings across a veth.
import test from 'ava';
import { confSysctlKey, Kernel } from '../../netlink/index.js';
import { codeOf, ping, spaces } from './fixture.js';

test('IPv4 and IPv6 addresses: add, replace, list, delete', async (t) => {
  const { h } = await spaces(t, 'ar', ['h']);
  await h.h.batch((b) =>
    b
      .linkAdd({ kind: 'veth', name: 'a0', up: true, peer: { name: 'a1' } })
      .linkSetUp('a1')
      .addrAdd('a0', '10.20.0.1/24')
      .addrAdd('a0', 'fd20::1/64', { noDad: true }),
  );
  const addrs = await h.h.addresses({ dev: 'a0' });
  t.like(addrs.find((a) => a.family === 4), { address: '10.20.0.1', prefixLen: 24, cidr: '10.20.0.1/24', scope: 'global' });
  t.like(addrs.find((a) => a.address === 'fd20::1'), { family: 6, prefixLen: 64 });
  t.regex(await h.ns.ip('-6', 'addr', 'show', 'dev', 'a0'), /fd20::1\/64 scope global nodad/);
  t.is(await codeOf(t, h.h.addrAdd('a0', '10.20.0.1/24')), 'EEXIST');
  await h.h.addrReplace('a0', '10.20.0.1/24');
  await h.h.addrDel('a0', 'fd20::1/64');
  t.deepEqual((await h.h.addresses({ dev: 'a0', family: 6 })).filter((a) => a.scope === 'global'), []);
  t.is(await codeOf(t, h.h.addrDel('a0', 'fd20::1/64')), 'EADDRNOTAVAIL');
  await h.h.addrFlush('a0');
  t.deepEqual(await h.h.addresses({ dev: 'a0', family: 4 }), []);
});

test('routes: gateway, onlink, scope, table, IPv6 default; missing and unreachable', async (t) => {
  const { h } = await spaces(t, 'ar', ['h']);
  await h.h.batch((b) =>
    b
      .linkAdd({ kind: 'veth', name: 'r0', up: true, peer: { name: 'r1' } })
      .linkSetUp('r1')
      .addrAdd('r0', '10.30.0.2/24')
      .addrAdd('r0', 'fd30::2/64', { noDad: true })
      .routeAdd({ dst: 'default', via: '10.30.0.1' })
      .routeAdd({ dst: '10.31.0.0/16', via: '10.99.99.1', dev: 'r0', onlink: true, metric: 7 })
      .routeAdd({ dst: '10.32.0.0/16', dev: 'r0', scope: 'link', table: 100 })
      .routeAdd({ dst: 'default', via: 'fd30::1', dev: 'r0' }),
  );
  const main = await h.h.routes();
  t.like(main.find((r) => r.family === 4 && r.dst === 'default'), { via: '10.30.0.1', dev: 'r0', table: 'main' });
  t.like(main.find((r) => r.dst === '10.31.0.0/16'), { via: '10.99.99.1', onlink: true, metric: 7 });
  t.like(main.find((r) => r.family === 6 && r.dst === 'default'), { via: 'fd30::1' });
  t.is(main.find((r) => r.dst === '10.32.0.0/16'), undefined, 'table 100 is not main');
  t.like((await h.h.routes({ table: 100 }))[0], { dst: '10.32.0.0/16', scope: 'link', table: '100', family: 4 });
  t.regex(await h.ns.ip('route', 'show', 'table', '100'), /10\.32\.0\.0\/16 dev r0 scope link/);
  await h.h.routeReplace({ dst: '10.31.0.0/16', via: '10.99.99.2', dev: 'r0', onlink: true, metric: 7 });
  t.is((await h.h.routes({ family: 4 })).find((r) => r.dst === '10.31.0.0/16')?.via, '10.99.99.2');
  await h.h.routeDel({ dst: '10.32.0.0/16', table: 100 });
  t.deepEqual(await h.h.routes({ table: 100 }), []);
  t.is(await codeOf(t, h.h.routeDel({ dst: '10.32.0.0/16', table: 100 })), 'ESRCH');
  t.is(await codeOf(t, h.h.routeAdd({ dst: '10.33.0.0/16', via: '10.77.0.1' })), 'ENETUNREACH');
});

test('permanent neighbour entries (ARP and NDP), idempotent replace, delete', async (t) => {
  const { h } = await spaces(t, 'ar', ['h']);
  await h.h.batch((b) => b.linkAdd({ kind: 'veth', name: 'n0', up: true, peer: { name: 'n1' } }).linkSetUp('n1'));
  for (let i = 0; i < 2; i++) {
    await h.h.batch((b) =>
      b
        .neighReplace({ dst: '10.40.0.9', lladdr: '02:00:00:00:40:09', dev: 'n0' })
        .neighReplace({ dst: 'fd40::9', lladdr: '02:00:00:00:40:09', dev: 'n0' }),
    );
  }
  const n = await h.h.neighbours({ dev: 'n0' });
  t.is(n.length, 2);
  t.like(n.find((x) => x.family === 4), { dst: '10.40.0.9', lladdr: '02:00:00:00:40:09', permanent: true });
  t.like(n.find((x) => x.family === 6), { dst: 'fd40::9', permanent: true });
  t.regex(await h.ns.ip('neigh', 'show', 'dev', 'n0'), /10\.40\.0\.9 lladdr 02:00:00:00:40:09 PERMANENT/);
  t.is(await codeOf(t, h.h.neighAdd({ dst: '10.40.0.9', lladdr: '02:00:00:00:40:0a', dev: 'n0' })), 'EEXIST');
  await h.h.neighDel({ dst: '10.40.0.9', dev: 'n0' });
  t.deepEqual((await h.h.neighbours({ dev: 'n0', family: 4 })).map((x) => x.dst), []);
  t.is(await codeOf(t, h.h.neighDel({ dst: '10.40.0.9', dev: 'n0' })), 'ENOENT');
});

test('sysctl set/get inside a namespace leaves the root namespace unchanged', async (t) => {
  const { c } = await spaces(t, 'ar', ['c']);
  const root = new Kernel().ns(null);
  const keys = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.route_localnet'];
  const rootBefore = await Promise.all(keys.map((k) => root.sysctlGet(k)));
  await c.h.linkAdd({ kind: 'veth', name: 's.1', peer: { name: 's2' } });
  const want = rootBefore.map((v) => (v === '1' ? '0' : '1'));
  await c.h.sysctlSetMany({ [keys[0]!]: want[0]!, [keys[1]!]: want[1]!, [confSysctlKey(6, 's.1', 'accept_ra')]: 0 });
  t.deepEqual(await Promise.all(keys.map((k) => c.h.sysctlGet(k))), want);
  t.is(await c.h.sysctlGet('net/ipv6/conf/s.1/accept_ra'), '0');
  t.is((await c.ns.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).trim(), want[0]);
  t.deepEqual(await Promise.all(keys.map((k) => root.sysctlGet(k))), rootBefore, 'root namespace untouched');
  t.is(await codeOf(t, c.h.sysctlGet('net.ipv4.no_such_key')), 'ENOENT');
  t.is(await codeOf(t, c.h.sysctlSet('kernel.hostname', 'x')), 'EINVAL');
  t.is(await codeOf(t, c.h.sysctlSet('net.ipv4.ip_forward', 'abc')), 'EINVAL');
});

test('ping across a veth between a host and a container namespace (IPv4 and IPv6)', async (t) => {
  const { h, c } = await spaces(t, 'ar', ['h', 'c']);
  await h.h.batch((b) =>
    b
      .linkAdd({ kind: 'bridge', name: 'br0', up: true })
      .addrAdd('br0', '10.50.0.1/24')
      .addrAdd('br0', 'fd50::1/64', { noDad: true })
      .linkAdd({ kind: 'veth', name: 'vc0', master: 'br0', up: true, peer: { name: 'eth0', netns: c.h.path! } }),
  );
  await c.h.batch((b) =>
    b
      .addrAdd('eth0', '10.50.0.2/24')
      .addrAdd('eth0', 'fd50::2/64', { noDad: true })
      .linkSetUp('eth0')
      .routeAdd({ dst: 'default', via: '10.50.0.1' }),
  );
  t.true(await ping(c.ns, '10.50.0.1'));
  t.true(await ping(c.ns, 'fd50::1'));
  t.true(await ping(h.ns, '10.50.0.2'));
});
