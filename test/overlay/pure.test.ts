// The overlay's pure logic and its store-only parts, without a kernel: config parsing and names,
// desired entries and diffs, host records, VNI allocation (CAS, races, replays) and the dead-host
// reaper's grace time, over the embedded SQLite store.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../ipam/index.js';
import { isDriverError } from '../../plugins/drivers/common/errors.js';
import type { EndpointRecord } from '../../plugins/drivers/common/records.js';
import {
  configFromRecord,
  gatewayMac,
  networkMtu,
  overlayBridgeName,
  overlayRecord,
  parseHostConfig,
  parseOverlayNetwork,
  sameNetwork,
  vxlanName,
} from '../../plugins/drivers/overlay/config.js';
import { HostReaper } from '../../plugins/drivers/overlay/host-gc.js';
import { decodeHost, HostRegistration } from '../../plugins/drivers/overlay/hosts.js';
import {
  asInstalled,
  DesiredPeers,
  desiredEntries,
  diffEntries,
  diffEntriesFor,
  markInstalled,
  peerOf,
  type InstalledPeer,
  type PeerDiff,
  type PeerEndpoint,
  type PeerEntry,
} from '../../plugins/drivers/overlay/peer-entries.js';
import { VniAllocator } from '../../plugins/drivers/overlay/vni.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';

async function sqlite(t: { teardown(fn: () => unknown): void }): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-ovp-'));
  const s = await openStore(`sqlite://${join(dir, 'store.db')}`, { sqlite: { pollMs: 10, sweepMs: 50 } });
  t.teardown(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

const ep = (id: string, hostId: string, addr: string, extra: Partial<EndpointRecord> = {}): EndpointRecord => ({
  id,
  networkId: 'n',
  hostId,
  driver: 'overlay',
  names: [],
  aliases: [],
  addresses: [addr],
  ports: [],
  exposed: [],
  createdAt: '2025-01-01T00:00:00.000Z',
  ...extra,
});

test('network config: defaults, options, names, MTU, record round trip', (t) => {
  const spec = parseOverlayNetwork({ id: 'blue', subnets: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1' }] });
  t.is(spec.vni, undefined);
  t.is(spec.mtu, undefined);
  t.is(spec.bridge.bridge, overlayBridgeName('blue'));
  t.regex(overlayBridgeName('blue'), /^tsob-[0-9a-f]{8}$/);
  t.is(vxlanName('0123456789abcdef'), 'tsvx-01234567');
  t.is(networkMtu(spec, 1500), 1450);
  t.is(networkMtu(spec, 9000), 8950);
  t.is(networkMtu(spec, undefined), 1450);
  const rec = overlayRecord(spec, 4242, 1450, '2025-01-01T00:00:00.000Z');
  t.like(rec, { driver: 'overlay', scope: 'global', vni: 4242, mtu: 1450, gateways: ['10.1.0.1'], masquerade: true });
  t.is(rec.hostId, undefined, 'an overlay network belongs to no host');
  const cfg = configFromRecord(rec);
  t.like(cfg, { vni: 4242, vxlan: vxlanName('blue'), gatewayMac: '02:47:0a:01:00:01' });
  t.is(cfg.bridge.mtu, 1450);
  t.is(sameNetwork(rec, spec), undefined);

  const opt = parseOverlayNetwork({ id: 'x', subnets: [{ subnet: '10.2.0.0/24', gateway: '10.2.0.1' }], internal: true, options: { vni: '77', mtu: '1400', bridge: 'ovbr0' } });
  t.like(opt, { vni: 77, mtu: 1400 });
  t.is(opt.bridge.bridge, 'ovbr0');
  t.false(opt.bridge.masquerade, 'internal networks are never masqueraded');
  t.regex(sameNetwork(rec, parseOverlayNetwork({ id: 'blue', subnets: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1' }], options: { vni: 5 } })) ?? '', /vni 4242, not 5/);
  t.is(gatewayMac('10.1.0.1'), '02:47:0a:01:00:01');
});

test('network config: bad input names the field', (t) => {
  const bad = (input: unknown, re: RegExp) => {
    const err = t.throws(() => parseOverlayNetwork(input as never));
    t.true(isDriverError(err, 'invalid-config'));
    t.regex(err!.message, re);
  };
  bad({ id: 'x', subnets: [{ subnet: '10.2.0.0/24', gateway: '10.2.0.1' }], options: { vni: '0' } }, /vni "0"/);
  bad({ id: 'x', subnets: [{ subnet: '10.2.0.0/24', gateway: '10.2.0.1' }], options: { vni: 16777216 } }, /vni 16777216/);
  bad({ id: 'x', subnets: [{ subnet: '10.2.0.0/24', gateway: '10.2.0.1' }], options: { mtu: 'big' } }, /mtu "big"/);
  bad({ id: 'x', subnets: [{ subnet: '10.2.0.0/24' }] }, /needs a gateway/);
  bad({ id: 'x', subnets: [{ subnet: 'fd00::/64', gateway: 'fd00::1' }] }, /IPv4 only/);
  bad({ id: '', subnets: [] }, /invalid id/);
  t.notThrows(() => parseOverlayNetwork({ id: 'x', subnets: [{ subnet: '10.2.0.0/24' }], internal: true }));
  t.throws(() => parseHostConfig({ hostId: 'h', advertise: 'fe80::1' }), { message: /IPv4/ });
  t.throws(() => parseHostConfig({ hostId: 'h', vxlanPort: 70000 }), { message: /vxlanPort/ });
  t.like(parseHostConfig({ hostId: 'h', advertise: '10.0.0.1' }), { advertise: '10.0.0.1', vxlanPort: 4789, graceMs: 60_000 });
});

test('host records: tolerant decoding (older daemon records mean the default port)', (t) => {
  t.deepEqual(decodeHost('a', JSON.stringify({ id: 'a', advertise: '10.0.0.1', version: '0.1.0' })), { id: 'a', advertise: '10.0.0.1', port: 4789 });
  t.deepEqual(decodeHost('a', JSON.stringify({ advertise: '10.0.0.1', vxlanPort: 4790 })), { id: 'a', advertise: '10.0.0.1', port: 4790 });
  t.deepEqual(decodeHost('a', JSON.stringify({ advertise: null })), { id: 'a', advertise: null, port: 4789 });
  t.deepEqual(decodeHost('a', JSON.stringify({ advertise: '10.0.0.1; rm -rf /' })), { id: 'a', advertise: null, port: 4789 });
  t.is(decodeHost('a', 'not json'), undefined);
});

test('desired entries: remote endpoints of live hosts only, MAC derived when absent, one MAC per IP', (t) => {
  const hosts = new Map([
    ['a', { id: 'a', advertise: '10.0.0.1', port: 4789 }],
    ['b', { id: 'b', advertise: '10.0.0.2', port: 4790 }],
    ['c', { id: 'c', advertise: null, port: 4789 }],
  ]);
  const d = desiredEntries(
    (
      [
      ep('mine', 'a', '10.1.0.2/24'),
      ep('b1', 'b', '10.1.0.3/24'),
      ep('b2', 'b', '10.1.0.4/24', { mac: '02:AA:00:00:00:01' }),
      ep('c1', 'c', '10.1.0.5/24'),
      ep('dead', 'gone', '10.1.0.6/24'),
      ep('old', 'b', '10.1.0.7/24', { mac: '02:bb:00:00:00:01', createdAt: '2024-01-01T00:00:00.000Z' }),
      ep('new', 'b', '10.1.0.7/24', { mac: '02:bb:00:00:00:02' }),
      ep('badmac', 'b', '10.1.0.8/24', { mac: '02:bb:00:00:00:02 dev x' }),
      ep('mcast', 'b', '10.1.0.9/24', { mac: '01:00:5e:00:00:01' }),
      ep('badip', 'b', '10.1.0.300/24'),
      ep('other-driver', 'b', '10.1.0.10/24', { driver: 'bridge' }),
    ] as EndpointRecord[]
    ).flatMap((e) => peerOf(e) ?? []),
    hosts,
    'a',
  );
  t.deepEqual([...d.keys()].sort(), ['02:42:0a:01:00:03', '02:aa:00:00:00:01', '02:bb:00:00:00:01', '02:bb:00:00:00:02']);
  t.deepEqual(d.get('02:42:0a:01:00:03'), { mac: '02:42:0a:01:00:03', vtep: '10.0.0.2', port: 4790, ips: ['10.1.0.3'] });
  t.deepEqual(d.get('02:bb:00:00:00:01')!.ips, [], 'the address went to the newer endpoint');
  t.deepEqual(d.get('02:bb:00:00:00:02')!.ips, ['10.1.0.7']);
  t.false([...d.values()].some((e) => e.ips.includes('10.1.0.8') || e.ips.includes('10.1.0.9') || e.ips.includes('10.1.0.10')), 'unusable records are skipped');
});

test('diff: puts what is missing or different, removes the rest, keeps moved addresses', (t) => {
  const desired = new Map([
    ['m1', { mac: 'm1', vtep: '10.0.0.2', port: 4789, ips: ['10.1.0.3'] }],
    ['m2', { mac: 'm2', vtep: '10.0.0.3', port: 4789, ips: ['10.1.0.4'] }],
    ['m3', { mac: 'm3', vtep: '10.0.0.3', port: 4789, ips: ['10.1.0.8'] }],
  ]);
  const installed = new Map<string, InstalledPeer>([
    ['m1', { mac: 'm1', vtep: '10.0.0.2', port: 4789, master: true, ips: ['10.1.0.3'] }],
    ['m2', { mac: 'm2', vtep: '10.0.0.2', port: 4789, master: true, ips: ['10.1.0.4', '10.1.0.9'] }],
    ['m3', { mac: 'm3', vtep: '10.0.0.3', port: 4789, master: false, ips: ['10.1.0.8'] }],
    ['stale', { mac: 'stale', vtep: '10.0.0.9', master: true, ips: ['10.1.0.5', '10.1.0.8'] }],
  ]);
  const d = diffEntries(installed, desired);
  t.deepEqual(d.put.map((e) => e.mac), ['m2', 'm3'], 'moved VTEP, missing master entry');
  t.deepEqual(d.dropIps, ['10.1.0.9']);
  t.deepEqual(d.remove, [{ mac: 'stale', vtep: '10.0.0.9', master: true, ips: ['10.1.0.5'] }], '10.1.0.8 is rewritten by m3, not deleted');
  const after = diffEntries(asInstalled(desired), desired);
  t.deepEqual(after, { put: [], remove: [], dropIps: [] });
});

test('desired peers kept change by change: the same entries, and diffs that leave the kernel as a full computation would', (t) => {
  // A seeded walk over a small world, so MACs and addresses are often claimed twice (stale records).
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const hosts = new Map([
    ['a', { id: 'a', advertise: '10.0.0.1', port: 4789 }],
    ['b', { id: 'b', advertise: '10.0.0.2', port: 4789 }],
    ['c', { id: 'c', advertise: '10.0.0.3', port: 4790 }],
    ['d', { id: 'd', advertise: null as string | null, port: 4789 }],
  ]);
  const endpoints = new Map<string, PeerEndpoint>();
  const randomEndpoint = (wide: boolean): PeerEndpoint => {
    const pool = wide ? 400 : 12;
    const ips = [...new Set(Array.from({ length: 1 + rnd(2) }, () => `10.1.${rnd(pool) >> 8}.${rnd(pool) & 255}`))].sort();
    return { hostId: ['a', 'b', 'c', 'd', 'gone'][rnd(5)]!, mac: `02:00:00:00:${(rnd(pool) >> 8).toString(16).padStart(2, '0')}:${(rnd(pool) & 255).toString(16).padStart(2, '0')}`, ips, createdAt: `2025-01-0${1 + rnd(3)}` };
  };
  // The kernel as the diffs leave it: FDB (mac → vtep) and neighbours (ip → mac).
  const fdb = new Map<string, string>();
  const neigh = new Map<string, string>();
  const applyToKernel = (d: PeerDiff) => {
    for (const e of d.remove) {
      fdb.delete(e.mac);
      for (const ip of e.ips) neigh.delete(ip);
    }
    for (const ip of d.dropIps) neigh.delete(ip);
    for (const e of d.put) {
      fdb.set(e.mac, `${e.vtep}:${e.port}`);
      for (const ip of e.ips) neigh.set(ip, e.mac);
    }
  };
  const sortDiff = (d: PeerDiff) => ({ put: d.put.map((e) => e.mac).sort(), remove: d.remove.map((e) => `${e.mac} ${e.ips.join()}`).sort(), dropIps: [...d.dropIps].sort() });
  const sorted = (m: ReadonlyMap<string, PeerEntry>) => [...m.values()].map((e) => JSON.stringify(e)).sort();

  let dp = DesiredPeers.build(endpoints, hosts, 'a');
  let installed = asInstalled(dp.entries);
  let incremental = 0;
  let rebuilt = 0;
  for (let step = 0; step < 3000; step++) {
    // Mostly distinct MACs and addresses (the normal case), every fourth stretch a crowded pool.
    const wide = Math.floor(step / 50) % 4 !== 0;
    const changes: [string, PeerEndpoint | undefined][] = [];
    for (let k = 1 + rnd(3); k > 0; k--) {
      const id = `e${rnd(40)}`;
      if (rnd(3) === 0) endpoints.delete(id);
      else endpoints.set(id, randomEndpoint(wide));
      changes.push([id, endpoints.get(id)]);
    }
    let diff: PeerDiff;
    if (step % 400 === 399) {
      // A host changed: the programmer computes the network again.
      hosts.get('c')!.advertise = hosts.get('c')!.advertise === '10.0.0.3' ? '10.0.0.9' : '10.0.0.3';
      dp = DesiredPeers.build(endpoints, hosts, 'a');
      diff = diffEntries(installed, dp.entries);
      installed = asInstalled(dp.entries);
      rebuilt++;
    } else {
      const macs = dp.update(changes);
      if (macs) {
        diff = diffEntriesFor(installed, dp.entries, macs, (ip) => dp.wants(ip));
        t.deepEqual(sortDiff(diff), sortDiff(diffEntries(installed, dp.entries)), `step ${step}: the diff of the touched MACs is the whole diff`);
        markInstalled(installed, dp.entries, macs);
        incremental++;
      } else {
        dp = DesiredPeers.build(endpoints, hosts, 'a');
        diff = diffEntries(installed, dp.entries);
        installed = asInstalled(dp.entries);
        rebuilt++;
      }
    }
    const full = desiredEntries(endpoints.values(), hosts, 'a');
    t.deepEqual(sorted(dp.entries), sorted(full), `step ${step}: entries`);
    applyToKernel(diff);
    t.deepEqual([...fdb.entries()].sort(), [...full.values()].map((e): [string, string] => [e.mac, `${e.vtep}:${e.port}`]).sort(), `step ${step}: FDB`);
    t.deepEqual([...neigh.entries()].sort(), [...full.values()].flatMap((e) => e.ips.map((ip): [string, string] => [ip, e.mac])).sort(), `step ${step}: neighbours`);
    t.deepEqual(sorted(new Map([...installed].map(([m, e]) => [m, { mac: e.mac, vtep: e.vtep!, port: e.port!, ips: e.ips }]))), sorted(full), `step ${step}: installed view`);
  }
  t.true(incremental > 1000 && rebuilt > 100, `both paths ran (${incremental} incremental, ${rebuilt} full)`);
});

test('VNI allocation: lowest free, replay returns the same, claims conflict, release is CAS', async (t) => {
  const s = await sqlite(t);
  const v = new VniAllocator(s, { first: 100, last: 103 });
  t.is(await v.allocate('n1'), 100);
  t.is(await v.allocate('n1'), 100, 'a replayed request gets its VNI back');
  t.is(await v.claim('n2', 101), 101);
  t.is(await v.claim('n2', 101), 101);
  const err = await t.throwsAsync(v.claim('n3', 101));
  t.true(isDriverError(err, 'vni-taken'));
  t.is((err as { kind?: string }).kind, 'conflict');
  t.is(await v.allocate('n3'), 102);
  t.false(await v.release('other', 102), 'only the holder releases');
  t.true(await v.release('n3', 102));
  t.is(await v.allocate('n4'), 102, 'a released VNI is free again');
  t.is(await v.allocate('n5'), 103);
  const full = await t.throwsAsync(v.allocate('n6'));
  t.true(isDriverError(full, 'vni-exhausted'));
  t.deepEqual([...(await v.list()).entries()].sort(), [[100, 'n1'], [101, 'n2'], [102, 'n4'], [103, 'n5']]);
});

test('VNI allocation: concurrent networks from several clients never share a VNI', async (t) => {
  const s = await sqlite(t);
  const clients = [new VniAllocator(s), new VniAllocator(s), new VniAllocator(s)];
  const got = await Promise.all(Array.from({ length: 30 }, (_, i) => clients[i % 3]!.allocate(`net-${i}`)));
  t.is(new Set(got).size, 30);
  const held = await new VniAllocator(s).list();
  for (let i = 0; i < 30; i++) t.is(held.get(got[i]!), `net-${i}`);
});

test('dead-host reaper: a host back within the grace keeps everything; after it, endpoints and addresses go', async (t) => {
  const s = await sqlite(t);
  const ipam = new Ipam(s, { hostId: 'b' });
  const pool = await ipam.requestPool({ space: 'global', cidr: '10.9.0.0/24' });
  const a1 = await ipam.requestAddress(pool.poolId, { owner: 'ep-b1' });
  for (const [id, host, addr] of [['b1', 'b', a1.address], ['a1', 'a', '10.9.0.200']] as const) {
    await s.put(keys.endpoint('n', id), JSON.stringify(ep(id, host, `${addr}/24`)));
  }
  const released: string[] = [];
  const reaper = new HostReaper({
    store: s,
    hostId: 'a',
    graceMs: 150,
    releaseAddresses: async (hostId, eps) => {
      released.push(...eps.map((e) => e.id));
      await ipam.gc({ isOwnerValid: () => true, deadHosts: [hostId] });
    },
  });
  t.teardown(() => reaper.stop());
  const reg = new HostRegistration({ store: s, record: { id: 'b', advertise: '10.0.0.2', vxlanPort: 4789 }, ttlSeconds: 1 });
  await reg.start();
  t.deepEqual(await reaper.scan(new Set(['a', 'b'])), []);
  reaper.gone('b');
  reaper.back('b');
  await new Promise((r) => setTimeout(r, 300));
  t.truthy(await s.get(keys.endpoint('n', 'b1')), 'back within the grace: kept');
  reaper.gone('b');
  await new Promise((r) => setTimeout(r, 300));
  t.truthy(await s.get(keys.endpoint('n', 'b1')), 'its record is still there (lease alive): not reaped');
  await reg.stop({ revoke: true });
  t.deepEqual(await reaper.scan(new Set(['a'])), ['b']);
  const end = Date.now() + 3000;
  while ((await s.get(keys.endpoint('n', 'b1'))) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  t.is(await s.get(keys.endpoint('n', 'b1')), undefined);
  t.truthy(await s.get(keys.endpoint('n', 'a1')), "the live host's endpoint stays");
  t.deepEqual(released, ['b1']);
  t.false((await ipam.listAllocations(pool.poolId)).some((x) => x.address === a1.address), 'address released');
});
