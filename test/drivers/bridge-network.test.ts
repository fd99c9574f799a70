// Bridge driver, network level, on a real kernel inside test namespaces: the bridge, its gateway
// addresses, MTU, sysctls and record; idempotent create/delete; option validation; rollback of a
// failed create; reconcile after someone deleted the bridge.
import test from 'ava';
import { keys } from '../../store/keys.js';
import { DEFAULT_LINK_GROUPS } from '../../plugins/drivers/bridge/bridge.js';
import { parseBridgeNetwork } from '../../plugins/drivers/bridge/config.js';
import type { FirewallPort } from '../../plugins/drivers/common/firewall-port.js';
import { bridgeEnv, collectingLogger, dockerId, ping } from './fixture.js';

const NET = (tag: string, extra: Record<string, unknown> = {}) => ({
  id: dockerId(tag),
  name: tag,
  subnets: [{ subnet: '10.31.0.0/24', gateway: '10.31.0.1/24' }],
  ...extra,
});

test('createNetwork makes the bridge with gateway, MTU and our link group; records it; twice is fine', async (t) => {
  const env = await bridgeEnv(t, 'bnet');
  const input = NET('n1', { options: { mtu: '1400' } });
  const rec = await env.driver.createNetwork(input);
  t.is(rec.bridge, `tsbr-${input.id.slice(0, 8)}`);
  t.deepEqual(rec.gateways, ['10.31.0.1']);
  t.deepEqual(rec.subnets, ['10.31.0.0/24']);
  const br = await env.h.link(rec.bridge!);
  t.truthy(br);
  t.is(br!.kind, 'bridge');
  t.is(br!.mtu, 1400);
  t.true(br!.up);
  t.is(br!.group, DEFAULT_LINK_GROUPS.bridge);
  const addrs = (await env.h.addresses({ dev: rec.bridge! })).map((a) => a.cidr);
  t.true(addrs.includes('10.31.0.1/24'));
  t.is(await env.h.sysctlGet('net.ipv4.ip_forward'), '1');
  t.truthy(await env.store.get(keys.network(input.id)));
  // The host reaches its own gateway address.
  t.true(await ping(env.host, '10.31.0.1'));

  const again = await env.driver.createNetwork(input);
  t.deepEqual(again, rec);
  t.is((await env.h.addresses({ dev: rec.bridge! })).filter((a) => a.family === 4).length, 1);
});

test('createNetwork with the same id but another config is a conflict; another network on the same bridge too', async (t) => {
  const env = await bridgeEnv(t, 'bconf');
  await env.driver.createNetwork(NET('c1', { options: { bridge: 'tsbr-shared' } }));
  const e1 = await t.throwsAsync(env.driver.createNetwork(NET('c1', { options: { bridge: 'tsbr-shared', mtu: 1300 } })));
  t.like(e1, { code: 'network-exists', kind: 'conflict' });
  t.regex(e1!.message, /mtu 1500, not 1300/);
  const e2 = await t.throwsAsync(
    env.driver.createNetwork({ id: dockerId('c2'), subnets: [{ subnet: '10.32.0.0/24' }], options: { bridge: 'tsbr-shared' } }),
  );
  t.like(e2, { code: 'bridge-in-use' });
  t.is(await env.store.get(keys.network(dockerId('c2'))), undefined);
});

test('deleteNetwork removes bridge, addresses and record; a second delete and a delete of the unknown succeed', async (t) => {
  const env = await bridgeEnv(t, 'bdel');
  const rec = await env.driver.createNetwork(NET('d1'));
  await env.driver.deleteNetwork(rec.id);
  t.is(await env.h.link(rec.bridge!), null);
  t.is(await env.store.get(keys.network(rec.id)), undefined);
  await t.notThrowsAsync(env.driver.deleteNetwork(rec.id));
  await t.notThrowsAsync(env.driver.deleteNetwork('never-created'));
  const left = (await env.h.links()).filter((l) => l.name !== 'lo');
  t.deepEqual(left, []);
});

test('an existing bridge that is not ours is used, and on delete only our gateway address leaves it', async (t) => {
  const env = await bridgeEnv(t, 'bown');
  await env.host.ip('link', 'add', 'userbr0', 'type', 'bridge');
  await env.host.ip('addr', 'add', '192.168.77.1/24', 'dev', 'userbr0');
  const rec = await env.driver.createNetwork(NET('o1', { options: { bridge: 'userbr0' } }));
  t.true((await env.h.addresses({ dev: 'userbr0' })).some((a) => a.cidr === '10.31.0.1/24'));
  await env.driver.deleteNetwork(rec.id);
  const br = await env.h.link('userbr0');
  t.truthy(br, 'the user bridge stays');
  const addrs = (await env.h.addresses({ dev: 'userbr0', family: 4 })).map((a) => a.cidr);
  t.deepEqual(addrs, ['192.168.77.1/24']);
});

test('bad options are refused naming key and value; unknown keys are logged and ignored; nothing is made', async (t) => {
  const env = await bridgeEnv(t, 'bopt');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ mtu: 67 }, /invalid mtu 67: must be between 68 and 65535/],
    [{ mtu: '70000' }, /invalid mtu "70000"/],
    [{ mtu: 'big' }, /invalid mtu "big": expected an integer/],
    [{ bridge: 'a-name-longer-than-15' }, /invalid bridge "a-name-longer-than-15": longer than 15 bytes/],
    [{ bridge: 'br/0' }, /invalid bridge "br\/0": must not contain '\/'/],
    [{ icc: 'maybe' }, /invalid icc "maybe": expected a boolean/],
    [{ masquerade: 3 }, /invalid masquerade 3/],
    [{ hostBindingIpv4: '::1' }, /invalid hostBindingIpv4 "::1": expected an IPv4 address/],
    [{ hairpin: { on: true } }, /invalid hairpin \{"on":true\}/],
  ];
  for (const [options, re] of cases) {
    const err = await t.throwsAsync(env.driver.createNetwork(NET('bad', { options })));
    t.like(err, { code: 'invalid-config', kind: 'bad-request' }, JSON.stringify(options));
    t.regex(err!.message, re);
  }
  const sub = await t.throwsAsync(env.driver.createNetwork({ id: 'x', subnets: [{ subnet: '10.1.0.0/24', gateway: '10.2.0.1' }] }));
  t.regex(sub!.message, /invalid subnets\[0\]\.gateway "10\.2\.0\.1": outside 10\.1\.0\.0\/24/);
  const none = await t.throwsAsync(env.driver.createNetwork({ id: 'x', subnets: [] }));
  t.regex(none!.message, /invalid subnets \[\]/);
  t.deepEqual((await env.h.links()).filter((l) => l.name !== 'lo'), []);
  t.deepEqual((await env.store.range(keys.networks())).kvs, []);

  const log = collectingLogger();
  const cfg = parseBridgeNetwork(NET('u', { options: { 'com.example.colour': 'blue', mtu: 1450 } }), log);
  t.is(cfg.mtu, 1450);
  t.false('com.example.colour' in cfg.options);
  t.true(log.lines.some((l) => l.level === 'warn' && l.obj.option === 'com.example.colour' && /unknown/.test(l.msg)));
});

test('a failure after the bridge was made (firewall refuses) leaves no bridge and no record', async (t) => {
  const failing: FirewallPort = {
    setNetwork: async () => {
      throw Object.assign(new Error('injected firewall failure'), { code: 'iptables-failed', kind: 'internal' });
    },
    removeNetwork: async () => {},
    publish: async () => [],
    unpublish: async () => {},
  };
  const env = await bridgeEnv(t, 'brb', [], { firewall: failing });
  const input = NET('r1');
  await t.throwsAsync(env.driver.createNetwork(input), { message: /injected firewall failure/ });
  t.deepEqual((await env.h.links()).filter((l) => l.name !== 'lo'), []);
  t.is(await env.store.get(keys.network(input.id)), undefined);
});

test('IPv6: gateway on the bridge without DAD, accept_ra=0 on the bridge, forwarding on', async (t) => {
  const env = await bridgeEnv(t, 'bv6');
  const rec = await env.driver.createNetwork({
    id: dockerId('v6'),
    subnets: [
      { subnet: '10.33.0.0/24', gateway: '10.33.0.1' },
      { subnet: 'fd00:33::/64', gateway: 'fd00:33::1' },
    ],
  });
  t.true(rec.ipv6);
  const addrs = (await env.h.addresses({ dev: rec.bridge! })).map((a) => a.cidr);
  t.true(addrs.includes('fd00:33::1/64'));
  t.is(await env.h.sysctlGet(`net/ipv6/conf/${rec.bridge}/accept_ra`), '0');
  t.is(await env.h.sysctlGet('net.ipv6.conf.all.forwarding'), '1');
  const off = await t.throwsAsync(env.driver.createNetwork({ id: 'v6off', ipv6: false, subnets: [{ subnet: 'fd00:34::/64' }] }));
  t.regex(off!.message, /invalid ipv6 false: a subnet is IPv6 but IPv6 is disabled/);
});

test('reconcile makes a deleted bridge again and removes bridges of ours that no record explains', async (t) => {
  const env = await bridgeEnv(t, 'brec');
  const rec = await env.driver.createNetwork(NET('k1'));
  await env.host.ip('link', 'del', rec.bridge!);
  // An orphan of ours (our group, no record) and a foreign bridge (no group) that must stay.
  await env.host.ip('link', 'add', 'tsbr-orphan', 'group', String(DEFAULT_LINK_GROUPS.bridge), 'type', 'bridge');
  await env.host.ip('link', 'add', 'foreignbr', 'type', 'bridge');

  const report = await env.newDriver().reconcile();
  t.deepEqual(report.bridgesCreated, [rec.bridge]);
  t.deepEqual(report.bridgesRemoved, ['tsbr-orphan']);
  t.deepEqual(report.errors, []);
  t.truthy(await env.h.link(rec.bridge!));
  t.true((await env.h.addresses({ dev: rec.bridge! })).some((a) => a.cidr === '10.31.0.1/24'));
  t.is(await env.h.link('tsbr-orphan'), null);
  t.truthy(await env.h.link('foreignbr'));
});
