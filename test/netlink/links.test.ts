// netlink/ links against the real kernel: bridge, veth into a container namespace, rename, MTU/MAC,
// macvlan, hairpin, errors with codes, group deletion, namespaces named by /proc/<pid>/ns/net.
import { spawn } from 'node:child_process';
import { readlinkSync, statSync } from 'node:fs';
import test from 'ava';
import { isNotFound, KernelError } from '../../netlink/index.js';
import { codeOf, ping, spaces } from './fixture.js';

test('bridge + veth whose peer is created directly in the container namespace', async (t) => {
  const { h, c } = await spaces(t, 'lk', ['h', 'c']);
  const made = await h.h.ensureBridge('br0', { mtu: 1450 });
  t.like(made, { created: true, link: { kind: 'bridge', up: true, mtu: 1450 } });
  t.like(await h.h.ensureBridge('br0', { mtu: 1450 }), { created: false, link: { index: made.link.index } }, 'second ensure finds it');
  await h.h.batch((b) =>
    b.linkAdd({ kind: 'veth', name: 'vethA', mtu: 1450, master: 'br0', up: true, peer: { name: 'eth0', netns: c.h.path!, mtu: 1450 } }),
  );
  const host = await h.h.link('vethA');
  t.like(host, { kind: 'veth', master: 'br0', up: true, mtu: 1450 });
  t.like(await h.h.link('br0'), { kind: 'bridge', up: true, mtu: 1450 });
  const eth0 = await c.h.link('eth0');
  t.like(eth0, { kind: 'veth', up: false, mtu: 1450 });
  t.is(typeof eth0?.linkNetnsId, 'number', 'peer lives in another namespace');
  t.is(await h.h.link('eth0'), null, 'nothing named eth0 on the host side');
  t.regex(await h.ns.ip('link', 'show', 'master', 'br0'), /vethA@/);
});

test('one process in the container creates the host end already enslaved (masterIndex)', async (t) => {
  const { h, c } = await spaces(t, 'lk', ['h', 'c']);
  const br = (await h.h.ensureBridge('br0')).link;
  await h.h.addrAdd('br0', '10.60.0.1/24');
  // A decoy in the container named like the index must not be taken for the bridge.
  await c.h.linkAdd({ kind: 'bridge', name: `if${br.index}` });
  await c.h.batch((b) =>
    b
      .linkAdd({ kind: 'veth', name: 'vh0', netns: h.h.path!, masterIndex: br.index, up: true, mtu: 1400, peer: { name: 'eth0', mtu: 1400 } })
      .addrAdd('eth0', '10.60.0.2/24')
      .linkSetUp('eth0')
      .routeAdd({ dst: 'default', via: '10.60.0.1' }),
  );
  t.like(await h.h.link('vh0'), { master: 'br0', up: true, mtu: 1400 });
  t.like(await c.h.link('eth0'), { up: true, mtu: 1400 });
  t.is((await c.h.routes({ family: 4 })).find((r) => r.dst === 'default')?.via, '10.60.0.1');
  t.true(await ping(c.ns, '10.60.0.1'));
  // Drift is repaired: ensure brings a downed bridge back up with the wanted MTU.
  await h.h.linkSetDown('br0');
  t.like(await h.h.ensureBridge('br0', { mtu: 1400 }), { created: false, link: { up: true, mtu: 1400 } });
});

test('MTU, MAC, up/down, master release and rename', async (t) => {
  const { h } = await spaces(t, 'lk', ['h']);
  await h.h.batch((b) => b.linkAdd({ kind: 'bridge', name: 'br1' }).linkAdd({ kind: 'veth', name: 'va', peer: { name: 'vb' } }));
  await h.h.linkSet('va', { mtu: 1400, mac: '02:00:00:aa:bb:01', master: 'br1', up: true });
  t.like(await h.h.link('va'), { mtu: 1400, mac: '02:00:00:aa:bb:01', master: 'br1', up: true });
  t.regex(await h.ns.ip('link', 'show', 'va'), /mtu 1400 .*master br1/);
  await h.h.linkSetMaster('va', null);
  t.is((await h.h.link('va'))?.master, undefined);
  // Down, rename and up in one call (kernels before 6.x refuse to rename a running link).
  await h.h.linkSet('va', { up: false, name: 'renamed' });
  t.is(await h.h.link('va'), null);
  t.like(await h.h.link('renamed'), { up: false, mtu: 1400, mac: '02:00:00:aa:bb:01' });
  await h.h.linkRename('renamed', 'eth0');
  await h.h.linkSetUp('eth0');
  t.like(await h.h.link('eth0'), { up: true, mtu: 1400 });
  t.is(await codeOf(t, h.h.linkRename('eth0', 'vb')), 'EEXIST', 'the name is taken by the peer');
});

test('macvlan on a host link, created directly in the container namespace', async (t) => {
  const { h, c } = await spaces(t, 'lk', ['h', 'c']);
  await h.h.linkAdd({ kind: 'veth', name: 'up0', up: true, peer: { name: 'up1' } });
  await h.h.linkAdd({ kind: 'macvlan', name: 'mv0', parent: 'up0', mode: 'bridge', netns: c.h.path!, mac: '02:00:00:00:0c:01' });
  const mv = await c.h.link('mv0');
  t.like(mv, { kind: 'macvlan', mac: '02:00:00:00:0c:01', macvlan: { mode: 'bridge' } });
  t.is(await h.h.link('mv0'), null);
});

test('hairpin and learning flags on a bridge port', async (t) => {
  const { h } = await spaces(t, 'lk', ['h']);
  await h.h.batch((b) =>
    b
      .linkAdd({ kind: 'bridge', name: 'br0', up: true })
      .linkAdd({ kind: 'veth', name: 'p0', master: 'br0', up: true, peer: { name: 'p1' } })
      .bridgePortSet('p0', { hairpin: true, learning: false }),
  );
  t.like((await h.h.link('p0'))?.bridgePort, { hairpin: true, learning: false });
  t.regex(await h.ns.exec('bridge', ['-d', 'link', 'show', 'dev', 'p0']), /hairpin on/);
  await h.h.bridgePortSet('p0', { hairpin: false });
  t.false((await h.h.link('p0'))?.bridgePort?.hairpin);
});

test('errors carry errno-like codes and the failing batch line', async (t) => {
  const { k, h } = await spaces(t, 'lk', ['h']);
  await h.h.linkAdd({ kind: 'bridge', name: 'br0' });
  const dup = await t.throwsAsync(h.h.linkAdd({ kind: 'bridge', name: 'br0' }), { instanceOf: KernelError });
  t.like(dup, { code: 'EEXIST', kind: 'conflict', retryable: false });
  t.is(await codeOf(t, h.h.linkSetUp('missing0')), 'ENODEV');
  t.is(await codeOf(t, h.h.linkSetMaster('br0', 'missing0')), 'ENODEV');
  t.is(await codeOf(t, h.h.linkDel('missing0')), 'ENODEV');
  t.false(await h.h.linkDel('missing0', { missingOk: true }));
  t.is(await codeOf(t, h.h.linkAdd({ kind: 'veth', name: 'x0', peer: { name: 'x1', netns: '/var/run/netns/tsot-none' } })), 'ENOENT');
  const gone = await t.throwsAsync(k.ns('/var/run/netns/tsot-does-not-exist').links());
  t.like(gone, { code: 'ENOENT', kind: 'not-found' });
  t.true(isNotFound(gone));
  t.is(await codeOf(t, h.h.ensureBridge('lo')), 'EEXIST', 'lo exists and is no bridge');
  // A batch stops at the first failing line; lines before it are applied, after it not.
  const err = await t.throwsAsync(
    h.h.batch((b) => b.linkAdd({ kind: 'bridge', name: 'b1' }).linkSetUp('nope0').linkAdd({ kind: 'bridge', name: 'b2' })),
  );
  t.like(err, { code: 'ENODEV', details: { line: 'link set dev nope0 up' } });
  t.truthy(await h.h.link('b1'));
  t.is(await h.h.link('b2'), null);
});

test('link groups delete many links at once, peers in other namespaces too', async (t) => {
  const { h, c } = await spaces(t, 'lk', ['h', 'c']);
  await h.h.batch((b) => {
    for (let i = 0; i < 50; i++) b.linkAdd({ kind: 'veth', name: `g${i}`, group: 5, peer: { name: `gp${i}`, netns: c.h.path!, group: 5 } });
    b.linkAdd({ kind: 'bridge', name: 'keep0' });
  });
  t.is((await h.h.links({ group: 5 })).length, 50);
  t.is((await c.h.links({ group: 5 })).length, 50);
  await h.h.linkDeleteGroup(5);
  t.deepEqual(await h.h.links({ group: 5 }), []);
  t.deepEqual((await c.h.links()).map((l) => l.name), ['lo']);
  t.truthy(await h.h.link('keep0'), 'links outside the group stay');
});

test('a namespace can be named by /proc/<pid>/ns/net and by /run/netns', async (t) => {
  const { k, c } = await spaces(t, 'lk', ['c']);
  const holder = spawn('nsenter', [`--net=${c.ns.path}`, '--', 'sleep', '30'], { stdio: 'ignore' });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  // Safety: use the pid's path only once it is inside the test namespace (never the root one).
  const want = statSync(c.ns.path).ino;
  const entered = async () => {
    for (let i = 0; i < 100; i++) {
      if (/^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${holder.pid}/ns/net`))?.[1] === String(want)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  if (!(await entered())) return t.fail('holder process never entered the namespace');
  const byPid = k.ns(`/proc/${holder.pid}/ns/net`);
  await byPid.linkAdd({ kind: 'bridge', name: 'viapid' });
  await k.ns(`/run/netns/${c.ns.name}`).linkAdd({ kind: 'bridge', name: 'viarun' });
  t.regex(await c.ns.ip('link', 'show'), /viapid[\s\S]*viarun/);
});
