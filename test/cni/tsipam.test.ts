// tsipam as a runtime (or a delegating plugin) calls it: real executables, a real SQLite
// store, every verb and spec version, host-local's config forms, and the error codes.
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ipam } from '../../ipam/index.js';
import { openStore } from '../../store/open.js';
import { caller, pluginDir, tempDir, type Teardown } from './harness.js';

interface Env {
  cni: ReturnType<typeof caller>;
  dir: string;
  store: string;
}

async function setup(t: Teardown): Promise<Env> {
  const dir = await tempDir(t);
  return { cni: caller(await pluginDir(t)), dir, store: `sqlite://${join(dir, 'store.db')}` };
}

function conf(e: Env, ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { cniVersion: '1.0.0', name: 'tsot-ipam', type: 'tsbridge', store: e.store, daemonSocket: join(e.dir, 'no-daemon.sock'), ipam: { type: 'tsipam', ...ipam }, ...extra };
}

const att = (id: string, extra: Record<string, string> = {}) => ({ containerId: id, netns: '/var/run/netns/tsot-unused', ifname: 'eth0', ...extra });

async function allocations(e: Env): Promise<Array<{ address: string; owner: string | null }>> {
  const store = await openStore(e.store);
  try {
    return (await new Ipam(store, { hostId: 'test' }).listAllocations()).filter((a) => a.kind === 'endpoint');
  } finally {
    await store.close();
  }
}

test('every spec version: ADD (idempotent), CHECK, DEL (twice), results in the version\'s shape', async (t) => {
  const e = await setup(t);
  for (const [i, v] of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'].entries()) {
    const c = { ...conf(e, { ranges: [[{ subnet: `10.201.${i}.0/24` }], [{ subnet: `fd00:201:${i + 1}::/64` }]] }), cniVersion: v };
    const add = await e.cni('tsipam', 'ADD', c, att(`c${i}`));
    t.is(add.code, 0, add.stdout + add.stderr);
    const ips = v.startsWith('0.')
      ? [{ version: '4', address: `10.201.${i}.2/24`, gateway: `10.201.${i}.1` }, { version: '6', address: `fd00:201:${i + 1}::2/64`, gateway: `fd00:201:${i + 1}::1` }]
      : [{ address: `10.201.${i}.2/24`, gateway: `10.201.${i}.1` }, { address: `fd00:201:${i + 1}::2/64`, gateway: `fd00:201:${i + 1}::1` }];
    t.deepEqual(add.json, { cniVersion: v, ips }, v);
    const again = await e.cni('tsipam', 'ADD', c, att(`c${i}`));
    t.deepEqual(again.json, add.json, `${v}: ADD for the same owner is idempotent`);
    const check = await e.cni('tsipam', 'CHECK', { ...c, prevResult: add.json }, att(`c${i}`));
    if (v === '0.3.0' || v === '0.3.1') t.is(check.json?.code, 1, `${v}: CHECK needs 0.4.0`);
    else t.is(check.code, 0, `${v} CHECK: ${check.stdout}`);
    // DEL twice (idempotent) once; CHECK after DEL once.
    for (let k = 0; k < (v === '1.0.0' ? 2 : 1); k++) {
      const del = await e.cni('tsipam', 'DEL', c, { containerId: `c${i}`, ifname: 'eth0' });
      t.is(del.code, 0, `${v} DEL #${k + 1}: ${del.stdout}`);
      t.is(del.stdout, '');
    }
    if (v === '1.0.0') {
      const gone = await e.cni('tsipam', 'CHECK', { ...c, prevResult: add.json }, att(`c${i}`));
      t.is(gone.json?.code, 3, `${v}: CHECK after DEL`);
    }
  }
  t.deepEqual(await allocations(e), []);
});

test('host-local forms: legacy subnet/rangeStart/rangeEnd/gateway, routes, resolvConf, dataDir warned', async (t) => {
  const e = await setup(t);
  const resolv = join(e.dir, 'resolv.conf');
  await writeFile(resolv, '# test\nnameserver 10.202.0.53\nnameserver 10.202.0.54\nsearch a.example b.example\noptions ndots:2\ndomain a.example\n');
  const c = conf(e, {
    subnet: '10.202.0.0/24', rangeStart: '10.202.0.100', rangeEnd: '10.202.0.101', gateway: '10.202.0.254',
    routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.202.0.1' }],
    resolvConf: resolv, dataDir: '/var/lib/cni/networks',
  });
  const a = await e.cni('tsipam', 'ADD', c, att('a'));
  t.is(a.code, 0, a.stdout);
  t.deepEqual(a.json, {
    cniVersion: '1.0.0',
    ips: [{ address: '10.202.0.100/24', gateway: '10.202.0.254' }],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.202.0.1' }],
    dns: { nameservers: ['10.202.0.53', '10.202.0.54'], domain: 'a.example', search: ['a.example', 'b.example'], options: ['ndots:2'] },
  });
  t.regex(a.stderr, /ipam\.dataDir is ignored/);
  t.is((await e.cni('tsipam', 'ADD', c, att('b'))).json.ips[0].address, '10.202.0.101/24');
  const full = await e.cni('tsipam', 'ADD', c, att('c'));
  t.is(full.json?.code, 100, full.stdout);
  t.regex(full.json.msg, /exhausted/);
  // A set of two ranges: the first full, the second used; a replay keeps the address.
  const two = conf(e, { ranges: [[{ subnet: '10.203.0.0/30' }, { subnet: '10.203.1.0/24', rangeStart: '10.203.1.10' }]] });
  t.is((await e.cni('tsipam', 'ADD', two, att('x'))).json.ips[0].address, '10.203.0.2/30');
  const y = await e.cni('tsipam', 'ADD', two, att('y'));
  t.is(y.json.ips[0].address, '10.203.1.10/24', y.stdout);
  t.is((await e.cni('tsipam', 'DEL', two, att('x'))).code, 0);
  t.is((await e.cni('tsipam', 'ADD', two, att('y'))).json.ips[0].address, '10.203.1.10/24');
});

test('requested addresses: CNI_ARGS IP=, runtimeConfig.ips, args.cni.ips; taken is 101, outside the range is 7', async (t) => {
  const e = await setup(t);
  const c = conf(e, { ranges: [[{ subnet: '10.204.0.0/24', rangeStart: '10.204.0.10', rangeEnd: '10.204.0.20' }]] });
  const a = await e.cni('tsipam', 'ADD', c, att('a', { args: 'IgnoreUnknown=1;IP=10.204.0.15' }));
  t.is(a.json?.ips?.[0]?.address, '10.204.0.15/24', a.stdout);
  const b = await e.cni('tsipam', 'ADD', { ...c, runtimeConfig: { ips: ['10.204.0.16/24'] } }, att('b'));
  t.is(b.json?.ips?.[0]?.address, '10.204.0.16/24', b.stdout);
  const cc = await e.cni('tsipam', 'ADD', { ...c, args: { cni: { ips: ['10.204.0.17'] } } }, att('c'));
  t.is(cc.json?.ips?.[0]?.address, '10.204.0.17/24', cc.stdout);
  const taken = await e.cni('tsipam', 'ADD', c, att('d', { args: 'IP=10.204.0.15' }));
  t.is(taken.json?.code, 101, taken.stdout);
  t.regex(taken.json.msg, /10\.204\.0\.15/);
  const outside = await e.cni('tsipam', 'ADD', c, att('e', { args: 'IP=10.204.0.50' }));
  t.is(outside.json?.code, 7, outside.stdout);
  t.regex(outside.json.msg, /10\.204\.0\.50.*outside the range 10\.204\.0\.10-10\.204\.0\.20/);
  const elsewhere = await e.cni('tsipam', 'ADD', c, att('f', { args: 'IP=192.0.2.1' }));
  t.is(elsewhere.json?.code, 7);
  t.regex(elsewhere.json.msg, /192\.0\.2\.1.*not in any range/);
  // The same owner asking for another address than the one it holds.
  const other = await e.cni('tsipam', 'ADD', c, att('a', { args: 'IP=10.204.0.18' }));
  t.is(other.json?.code, 101, other.stdout);
  const owners = (await allocations(e)).map((x) => `${x.address} ${x.owner}`).sort();
  t.deepEqual(owners, ['10.204.0.16 cni:tsot-ipam:b:eth0', '10.204.0.17 cni:tsot-ipam:c:eth0']);
});

test('bad configs are 7 naming field and value; a bad environment is 4; an unreachable store is 11', async (t) => {
  const e = await setup(t);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ranges: [[{ subnet: '10.205.0.0/33' }]] }, /ipam\.ranges\[0\]\[0\]\.subnet "10\.205\.0\.0\/33"/],
    [{ ranges: [[{ subnet: 'bogus' }]] }, /ipam\.ranges\[0\]\[0\]\.subnet "bogus"/],
    [{ subnet: '10.205.0.5/24' }, /ipam\.subnet "10\.205\.0\.5\/24": host bits/],
    [{ subnet: '10.205.0.0/24', gateway: '10.206.0.1' }, /ipam\.gateway "10\.206\.0\.1": outside subnet 10\.205\.0\.0\/24/],
    [{ ranges: [[{ subnet: '10.205.0.0/24', rangeStart: '10.205.1.1' }]] }, /rangeStart "10\.205\.1\.1": outside subnet/],
    [{ ranges: [[{ subnet: '10.205.0.0/24', rangeStart: '10.205.0.9', rangeEnd: '10.205.0.3' }]] }, /rangeStart "10\.205\.0\.9": is after rangeEnd/],
    [{ ranges: [[{ subnet: '10.205.0.0/24' }], [{ subnet: '10.205.0.0/25' }]] }, /ipam\.ranges\[1\]\[0\]\.subnet "10\.205\.0\.0\/25": overlaps/],
    [{ ranges: [[{ subnet: '10.205.0.0/24' }, { subnet: 'fd00::/64' }]] }, /mixes address families/],
    [{}, /no IP ranges specified/],
    [{ ranges: [[{ subnet: '10.205.0.0/24' }]], routes: [{ dst: 'nope' }] }, /ipam\.routes\[0\]\.dst "nope"/],
  ];
  for (const [ipam, msg] of cases) {
    const r = await e.cni('tsipam', 'ADD', conf(e, ipam), att('bad'));
    t.is(r.json?.code, 7, `${JSON.stringify(ipam)} → ${r.stdout}`);
    t.regex(r.json?.msg ?? '', msg);
  }
  await writeFile(join(e.dir, 'a-file'), '');
  const ok = conf(e, { ranges: [[{ subnet: '10.205.0.0/24' }]] });
  const noId = await e.cni('tsipam', 'ADD', ok, { netns: '/var/run/netns/x', ifname: 'eth0' });
  t.is(noId.json?.code, 4);
  t.regex(noId.json.msg, /CNI_CONTAINERID/);
  const badVersion = await e.cni('tsipam', 'ADD', { ...ok, cniVersion: '0.2.0' }, att('v'));
  t.is(badVersion.json?.code, 1);
  const notJson = await e.cni('tsipam', 'ADD', '{"cniVersion":', att('j'));
  t.is(notJson.json?.code, 6);
  const down = await e.cni('tsipam', 'ADD', { ...ok, store: `sqlite://${join(e.dir, 'a-file', 'store.db')}` }, att('s'));
  t.is(down.json?.code, 11, down.stdout);
  const badUrl = await e.cni('tsipam', 'ADD', { ...ok, store: 'redis://x' }, att('s'));
  t.is(badUrl.json?.code, 7, badUrl.stdout);
  t.deepEqual(await allocations(e), [], 'no failed ADD left an allocation');
});

test('STATUS: ready with a store, 50 without; GC frees only this network\'s unlisted attachments', async (t) => {
  const e = await setup(t);
  await writeFile(join(e.dir, 'a-file'), '');
  const c = { ...conf(e, { ranges: [[{ subnet: '10.207.0.0/24' }]], store: e.store }), cniVersion: '1.1.0' };
  const ready = await e.cni('tsipam', 'STATUS', c);
  t.is(ready.code, 0, ready.stdout);
  const down = await e.cni('tsipam', 'STATUS', { ...c, ipam: { ...c.ipam, store: `sqlite://${join(e.dir, 'a-file', 'store.db')}` } });
  t.is(down.json?.code, 50, down.stdout);
  t.is((await e.cni('tsipam', 'STATUS', { ...c, cniVersion: '1.0.0' })).json?.code, 1, 'STATUS needs 1.1.0');
  const other = { ...c, name: 'tsot-other', ipam: { ...c.ipam, ranges: [[{ subnet: '10.208.0.0/24' }]] } };
  for (const id of ['g1', 'g2', 'g3']) t.is((await e.cni('tsipam', 'ADD', c, att(id))).code, 0);
  t.is((await e.cni('tsipam', 'ADD', other, att('g2'))).code, 0);
  const gc = await e.cni('tsipam', 'GC', { ...c, 'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'eth0' }] });
  t.is(gc.code, 0, gc.stdout);
  const left = (await allocations(e)).map((a) => a.owner).sort();
  t.deepEqual(left, ['cni:tsot-ipam:g2:eth0', 'cni:tsot-other:g2:eth0']);
  const gc2 = await e.cni('tsipam', 'GC', { ...other, 'cni.dev/attachments': [] });
  t.is(gc2.code, 0);
  t.deepEqual((await allocations(e)).map((a) => a.owner), ['cni:tsot-ipam:g2:eth0']);
});

test('ipRanges capability replaces the ranges; concurrent ADDs get distinct addresses', async (t) => {
  const e = await setup(t);
  const c = conf(e, { ranges: [[{ subnet: '10.209.0.0/24' }]] }, { capabilities: { ipRanges: true } });
  const r = await e.cni('tsipam', 'ADD', { ...c, runtimeConfig: { ipRanges: [[{ subnet: '10.210.0.0/24', rangeStart: '10.210.0.40' }]] } }, att('rr'));
  t.is(r.json?.ips?.[0]?.address, '10.210.0.40/24', r.stdout);
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => e.cni('tsipam', 'ADD', c, att(`p${i}`))));
  const addrs = many.map((m) => m.json?.ips?.[0]?.address);
  t.true(many.every((m) => m.code === 0), many.map((m) => m.stdout).join('\n'));
  t.is(new Set(addrs).size, 8);
});
