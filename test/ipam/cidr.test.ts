// Pure address math: parsing, canonical forms, containment, usable bounds, auto-pool choice.
import test from 'ava';
import {
  cidrContains,
  cidrsOverlap,
  formatAddress,
  formatCidr,
  parseAddress,
  parseCidr,
  parseInterface,
  subnets,
  usableBounds,
  usableCount,
} from '../../ipam/cidr.js';
import { IpamError } from '../../ipam/errors.js';
import { dockerDefaultPools, findAutoPool, parseRoutes } from '../../ipam/auto-pool.js';

const fmt = (c: ReturnType<typeof parseCidr>) => formatCidr(c);

test('addresses parse to canonical text in both families', (t) => {
  t.is(formatAddress(4, parseAddress('10.0.0.1').value), '10.0.0.1');
  t.is(formatAddress(6, parseAddress('FD00:0:0:0::0001').value), 'fd00::1');
  t.is(formatAddress(6, parseAddress('2001:db8:0:0:1:0:0:1').value), '2001:db8::1:0:0:1');
  t.is(parseAddress('::ffff:10.1.2.3').family, 6);
});

test('malformed addresses are refused with the value named', (t) => {
  for (const bad of ['', '10.0.0', '10.0.0.256', '010.0.0.1', '0x0a.0.0.1', 'fe80::1%eth0', 'abc', '1.2.3.4/24', ' 1.2.3.4']) {
    const err = t.throws(() => parseAddress(bad, 'gateway'), { instanceOf: IpamError });
    t.is(err!.code, 'invalid-address');
    t.true(err!.message.includes('gateway'), err!.message);
  }
  t.throws(() => parseAddress(42 as unknown as string), { instanceOf: IpamError });
});

test('CIDRs: canonical form, host bits refused with a hint, bad prefixes named', (t) => {
  t.is(fmt(parseCidr('172.18.0.0/16')), '172.18.0.0/16');
  t.is(fmt(parseCidr('fd00:0::/64')), 'fd00::/64');
  const hb = t.throws(() => parseCidr('10.1.2.3/24'), { instanceOf: IpamError })!;
  t.is(hb.code, 'invalid-cidr');
  t.regex(hb.message, /10\.1\.2\.3\/24.*10\.1\.2\.0\/24/);
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', 'fd00::/129', 'x/8', '10.0.0.0/', '/8']) {
    const err = t.throws(() => parseCidr(bad), { instanceOf: IpamError })!;
    t.is(err.code, 'invalid-cidr');
    t.true(err.message.includes(JSON.stringify(bad)), err.message);
  }
  const ifc = parseInterface('10.1.2.3/24');
  t.is(formatAddress(4, ifc.addr.value), '10.1.2.3');
  t.is(fmt(ifc.cidr), '10.1.2.0/24');
});

test('containment and overlap', (t) => {
  const a = parseCidr('10.0.0.0/16');
  t.true(cidrContains(a, parseAddress('10.0.255.255')));
  t.false(cidrContains(a, parseAddress('10.1.0.0')));
  t.false(cidrContains(a, parseAddress('::a00:1')));
  t.true(cidrsOverlap(a, parseCidr('10.0.3.0/24')));
  t.true(cidrsOverlap(parseCidr('10.0.3.0/24'), a));
  t.false(cidrsOverlap(a, parseCidr('10.1.0.0/16')));
  t.false(cidrsOverlap(parseCidr('0.0.0.0/0'), parseCidr('::/0')));
});

test('usable bounds: network/broadcast excluded, /31 and /32 per RFC 3021, IPv6 /127 /128', (t) => {
  const u = (c: string) => {
    const cc = parseCidr(c);
    const b = usableBounds(cc);
    return [formatAddress(cc.family, b.start), formatAddress(cc.family, b.end), Number(usableCount(cc))];
  };
  t.deepEqual(u('10.0.0.0/24'), ['10.0.0.1', '10.0.0.254', 254]);
  t.deepEqual(u('10.0.0.0/30'), ['10.0.0.1', '10.0.0.2', 2]);
  t.deepEqual(u('10.0.0.0/31'), ['10.0.0.0', '10.0.0.1', 2]);
  t.deepEqual(u('10.0.0.7/32'), ['10.0.0.7', '10.0.0.7', 1]);
  t.deepEqual(u('fd00::/120'), ['fd00::1', 'fd00::ff', 255]);
  t.deepEqual(u('fd00::/127'), ['fd00::', 'fd00::1', 2]);
  t.deepEqual(u('fd00::5/128'), ['fd00::5', 'fd00::5', 1]);
});

test('subnets iterate in order', (t) => {
  t.deepEqual([...subnets(parseCidr('10.0.0.0/24'), 26)].map(fmt), ['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26']);
  t.deepEqual([...subnets(parseCidr('10.0.0.0/24'), 23)], []);
});

test('auto pools follow Docker defaults and skip taken pools and host routes', (t) => {
  const d = dockerDefaultPools();
  t.is(fmt(findAutoPool(d.local, 4, [])!), '172.17.0.0/16');
  const taken = ['172.17.0.0/16', '172.18.5.0/24'].map((c) => parseCidr(c));
  t.is(fmt(findAutoPool(d.local, 4, taken)!), '172.19.0.0/16');
  // A host route wider than one candidate skips all candidates it covers.
  t.is(fmt(findAutoPool(d.local, 4, parseRoutes(['172.16.0.0/12', '0.0.0.0/0', 'default', '192.168.0.7']))!), '192.168.16.0/20');
  t.is(fmt(findAutoPool(d.global, 4, parseRoutes(['10.0.0.0/24', '10.0.1.0/25']))!), '10.0.2.0/24');
  t.is(fmt(findAutoPool(d.global, 6, [])!), 'fd10::/64');
  t.is(findAutoPool([{ base: '10.9.0.0/23', size: 24 }], 4, parseRoutes(['10.9.0.0/23'])), undefined);
});

test('auto pool search jumps over many taken pools quickly', (t) => {
  const taken = [];
  for (let i = 0; i < 60_000; i++) taken.push({ family: 4 as const, base: (10n << 24n) + (BigInt(i) << 8n), prefix: 24 });
  const start = Date.now();
  t.is(fmt(findAutoPool(dockerDefaultPools().global, 4, taken)!), '10.234.96.0/24');
  t.true(Date.now() - start < 5_000);
});
