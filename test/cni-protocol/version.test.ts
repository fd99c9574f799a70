// Version negotiation and result conversion across every supported CNI spec version.
import test from 'ava';
import { CniError } from '../../plugins/cni/errors.js';
import type { Result } from '../../plugins/cni/types.js';
import { compareVersions, negotiateVersion, parseResult, SUPPORTED_VERSIONS, toWireResult } from '../../plugins/cni/version.js';

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CniError ? err.code : -1;
  }
  return undefined;
}

test('the supported list is 0.3.0 … 1.1.0, in order', (t) => {
  t.deepEqual([...SUPPORTED_VERSIONS], ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  t.true(compareVersions('0.10.0', '0.4.0') > 0);
  t.true(compareVersions('1.0.0', '1.0') === 0);
});

test('cniVersion alone must be supported; missing means 0.1.0 (unsupported)', (t) => {
  for (const v of SUPPORTED_VERSIONS) t.is(negotiateVersion({ cniVersion: v }), v);
  t.is(codeOf(() => negotiateVersion({ cniVersion: '0.2.0' })), 1);
  t.is(codeOf(() => negotiateVersion({ cniVersion: '2.0.0' })), 1);
  t.is(codeOf(() => negotiateVersion({})), 1);
  t.is(codeOf(() => negotiateVersion({ cniVersion: 4 })), 6);
  const err = t.throws(() => negotiateVersion({ cniVersion: '0.2.0' }), { instanceOf: CniError }) as CniError;
  t.regex(err.msg, /cniVersion "0\.2\.0"/);
  t.regex(err.details ?? '', /1\.1\.0/);
});

test('cniVersions picks the highest common version, including cniVersion', (t) => {
  t.is(negotiateVersion({ cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0', '2.0.0'] }), '1.1.0');
  t.is(negotiateVersion({ cniVersion: '0.4.0', cniVersions: ['0.2.0', '0.3.1'] }), '0.4.0');
  t.is(negotiateVersion({ cniVersion: '9.9.9', cniVersions: ['0.3.0', '1.0.0'] }), '1.0.0');
  t.is(negotiateVersion({ cniVersions: ['1.0.0', '1.1.0'] }, ['0.4.0', '1.0.0']), '1.0.0');
  t.is(codeOf(() => negotiateVersion({ cniVersions: ['0.1.0', '0.2.0'] })), 1);
  t.is(codeOf(() => negotiateVersion({ cniVersions: '1.0.0' })), 6);
});

const full: Result = {
  interfaces: [
    { name: 'br0', mac: '02:00:00:00:00:01' },
    { name: 'veth1', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/c1', mtu: 1450, socketPath: '/run/x.sock', pciID: '0000:00:01.0' },
  ],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 2 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 2 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }, { dst: '::/0' }],
  dns: { nameservers: ['10.1.0.1'], domain: 'example', search: ['a.example'], options: ['ndots:2'] },
};

test('1.0.0 and 1.1.0: canonical → wire → canonical is the identity', (t) => {
  for (const v of ['1.0.0', '1.1.0']) {
    const wire = toWireResult(full, v) as unknown as Record<string, unknown>;
    t.is(wire.cniVersion, v);
    t.false(JSON.stringify(wire).includes('"version"'), `${v} has no ips[].version`);
    t.deepEqual(parseResult(JSON.parse(JSON.stringify(wire)), v), full, v);
  }
});

test('0.3.x/0.4.0: ips gain version "4"/"6", 1.1.0 interface fields are dropped, the rest round-trips', (t) => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    const wire = toWireResult(full, v) as unknown as { cniVersion: string; ips: Array<{ version: string }>; interfaces: object[] };
    t.is(wire.cniVersion, v);
    t.deepEqual(wire.ips.map((ip) => ip.version), ['4', '6']);
    t.deepEqual(wire.interfaces[2], { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/c1' });
    const back = parseResult(JSON.parse(JSON.stringify(wire)), v);
    const expected = structuredClone(full);
    expected.interfaces![2] = { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/netns/c1' };
    t.deepEqual(back, expected, v);
    // And the wire form itself is stable through another round.
    t.deepEqual(toWireResult(back, v), wire);
  }
});

test('every version pair converts through the canonical form', (t) => {
  const simple: Result = { interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }], ips: [{ address: '10.0.0.2/24', interface: 0 }] };
  for (const from of SUPPORTED_VERSIONS) {
    for (const to of SUPPORTED_VERSIONS) {
      const wire = JSON.parse(JSON.stringify(toWireResult(simple, from)));
      const converted = toWireResult(parseResult(wire, from), to) as { cniVersion: string };
      t.is(converted.cniVersion, to);
      t.deepEqual(parseResult(converted, to), simple, `${from} → ${to}`);
    }
  }
});

test('IPv4-mapped IPv6 is version "4" like libcni; empty parts are omitted', (t) => {
  const wire = toWireResult({ ips: [{ address: '::ffff:10.0.0.1/120' }], dns: {} }, '0.4.0');
  t.deepEqual(wire, { cniVersion: '0.4.0', ips: [{ version: '4', address: '::ffff:10.0.0.1/120' }] });
  t.deepEqual(toWireResult({}, '1.1.0'), { cniVersion: '1.1.0' });
});

test('parseResult accepts a reference plugin 0.4.0 answer (dns: {}, ips[].version, no cniVersion)', (t) => {
  const raw = { ips: [{ version: '4', address: '10.99.0.2/30', gateway: '10.99.0.1' }], dns: {} };
  t.deepEqual(parseResult(raw, '0.4.0'), { ips: [{ address: '10.99.0.2/30', gateway: '10.99.0.1' }] });
});

test('parseResult refuses malformed results with code 6 naming the field, unknown versions with 1', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['x', /prevResult "x"/],
    [{ ips: [{ address: '10.0.0.1' }] }, /prevResult\.ips\[0\]\.address "10\.0\.0\.1"/],
    [{ ips: [{ address: '10.0.0.1/33' }] }, /address/],
    [{ ips: [{ address: '10.0.0.1/24', gateway: 'gw' }] }, /gateway "gw"/],
    [{ routes: [{ dst: 'default' }] }, /routes\[0\]\.dst "default"/],
    [{ interfaces: [{ mac: 'x' }] }, /interfaces\[0\]\.name/],
    [{ interfaces: {} }, /interfaces/],
    [{ ips: [{ address: '10.0.0.1/24', interface: -1 }] }, /interface/],
    [{ dns: { nameservers: 'x' } }, /nameservers/],
  ];
  for (const [raw, re] of cases) {
    const err = t.throws(() => parseResult(raw, '1.0.0'), { instanceOf: CniError }) as CniError;
    t.is(err.code, 6, JSON.stringify(raw));
    t.regex(err.msg, re);
  }
  t.is(codeOf(() => parseResult({ cniVersion: '0.2.0' }, '1.0.0')), 1);
});
