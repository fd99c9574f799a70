// Pure driver logic without a kernel: names, MACs, option parsing, record decoding.
import test from 'ava';
import { configFromRecord, defaultBridgeName, networkRecordFields, parseBridgeNetwork, parseEndpoint } from '../../plugins/drivers/bridge/config.js';
import { macFromAddress, vethNames } from '../../plugins/drivers/common/naming.js';
import { decodeEndpointRecord, decodeNetworkRecord } from '../../plugins/drivers/common/records.js';
import { parseBool } from '../../plugins/drivers/common/validate.js';

test('veth names are 15 characters, stable per endpoint, distinct for host and peer', (t) => {
  const a = vethNames('endpoint-a');
  t.regex(a.host, /^tso[0-9a-f]{12}$/);
  t.regex(a.peer, /^tsc[0-9a-f]{12}$/);
  t.is(a.host.slice(3), a.peer.slice(3));
  t.deepEqual(vethNames('endpoint-a'), a);
  t.not(vethNames('endpoint-b').host, a.host);
});

test('MACs derive from the address like Docker: 02:42 + IPv4 octets, or the last four IPv6 bytes', (t) => {
  t.is(macFromAddress('172.17.0.2'), '02:42:ac:11:00:02');
  t.is(macFromAddress('10.41.0.255'), '02:42:0a:29:00:ff');
  t.is(macFromAddress('fd00:41::a:b'), '02:42:00:0a:00:0b');
  t.is(macFromAddress('::ffff:10.1.2.3'), '02:42:0a:01:02:03');
  t.throws(() => macFromAddress('nope'));
});

test('default bridge names: first 8 of a hex id, else 8 of its hash', (t) => {
  t.is(defaultBridgeName('0123456789abcdef0123'), 'tsbr-01234567');
  t.regex(defaultBridgeName('my-cni-net'), /^tsbr-[0-9a-f]{8}$/);
  t.not(defaultBridgeName('mynetwork1'), defaultBridgeName('mynetwork2'));
});

test('options: Docker string spellings and JSON values give the same config; internal forces masquerade off', (t) => {
  const base = { id: 'n', subnets: [{ subnet: '10.1.2.3/24', gateway: '10.1.2.1/24' }] };
  const a = parseBridgeNetwork({ ...base, options: { mtu: '1400', icc: 'false', masquerade: 'True', hairpin: '1' } });
  const b = parseBridgeNetwork({ ...base, options: { mtu: 1400, icc: false, masquerade: true, hairpin: true } });
  t.deepEqual({ ...a, options: {} }, { ...b, options: {} });
  t.deepEqual(a.subnets, [{ cidr: '10.1.2.0/24', family: 4, prefixLen: 24, gateway: '10.1.2.1' }]);
  t.false(parseBridgeNetwork({ ...base, internal: 'true' as unknown as boolean, options: { masquerade: true } }).masquerade);
  t.true(parseBool('x', 't'));
  t.throws(() => parseBool('x', 'yes'), { message: /invalid x "yes"/ });
  t.throws(() => parseBridgeNetwork({ ...base, subnets: [{ subnet: '10.0.0.0/16' }, { subnet: '10.0.1.0/24' }] }), { message: /overlaps 10\.0\.0\.0\/16/ });
});

test('a record round-trips through its config; endpoints must lie in a subnet', (t) => {
  const cfg = parseBridgeNetwork({ id: 'n', subnets: [{ subnet: '10.1.2.0/24', gateway: '10.1.2.1' }, { subnet: 'fd00::/64', gateway: 'fd00::1' }] });
  const rec = { ...networkRecordFields(cfg), driver: 'bridge' as const, scope: 'local' as const, hostId: 'h', createdAt: 'now' };
  t.deepEqual(configFromRecord(decodeNetworkRecord(JSON.stringify(rec), 'k')), cfg);
  const ep = parseEndpoint({ id: 'e', addresses: ['10.1.2.9', 'fd00::9/64'] }, cfg);
  t.deepEqual(ep.addresses.map((a) => a.cidr), ['10.1.2.9/24', 'fd00::9/64']);
  t.throws(() => parseEndpoint({ id: 'e', addresses: ['fd01::9'] }, cfg), { message: /not inside any subnet/ });
});

test('decoding refuses corrupt records with the key and the field', (t) => {
  t.throws(() => decodeNetworkRecord('{', '/k'), { message: /network record at \/k is unusable: not JSON/ });
  t.throws(() => decodeNetworkRecord('{"id":"n","driver":"bridge"}', '/k'), { message: /field scope/ });
  t.throws(() => decodeEndpointRecord('[]', '/e'), { message: /not a JSON object/ });
  const err = t.throws(() => decodeEndpointRecord('{"id":"e","networkId":"n","hostId":"h","driver":"bridge"}', '/e'));
  t.like(err, { code: 'corrupt-record', kind: 'internal' });
});
