// Option parsing at the edge: the engine's untyped maps become typed values, bad values name
// key and value, unknown keys are reported (and string ones handed on to the driver).
import test from 'ava';
import {
  parseAddressOptions,
  parseEndpointOptions,
  parseNetworkOptions,
  parsePoolOptions,
  parsePortMap,
} from '../../plugins/libnetwork/options.js';
import { parseAddressCidr, parseIp, parseNetworkCidr } from '../../plugins/libnetwork/values.js';

const G = 'com.docker.network.generic';

function badRequest(t: any, fn: () => unknown, ...fragments: string[]) {
  const err = t.throws(fn) as Error & { kind?: string; code?: string };
  t.is(err.kind, 'bad-request');
  for (const f of fragments) t.true(err.message.includes(f), `"${err.message}" should mention ${f}`);
}

test('network options: defaults when the engine sends null', (t) => {
  const { value, unknown } = parseNetworkOptions(null);
  t.deepEqual(value, { internal: false, enableIPv6: false, bridge: {}, driverOpts: {} });
  t.deepEqual(unknown, []);
});

test('network options: the shape dockerd 20.10 sends for -o, --internal, --ipv6', (t) => {
  const { value, unknown } = parseNetworkOptions({
    'com.docker.network.enable_ipv6': true,
    'com.docker.network.internal': true,
    [G]: {
      'com.docker.network.driver.mtu': '1400',
      'com.docker.network.bridge.name': 'br-test0',
      'com.docker.network.bridge.enable_icc': 'false',
      'com.docker.network.bridge.enable_ip_masquerade': 'true',
      'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
      'tsoverlay.vni': '4242',
    },
    'com.docker.network.something_new': 3,
  });
  t.deepEqual(value, {
    internal: true,
    enableIPv6: true,
    mtu: 1400,
    bridge: { name: 'br-test0', enableIcc: false, enableIpMasquerade: true, hostBindingIp: '127.0.0.1' },
    driverOpts: { 'tsoverlay.vni': '4242' },
  });
  t.deepEqual(unknown.sort(), [`${G}.tsoverlay.vni`, 'com.docker.network.something_new']);
});

test('network options: MTU as a number or a string, 68..65535', (t) => {
  t.is(parseNetworkOptions({ [G]: { 'com.docker.network.driver.mtu': 9000 } }).value.mtu, 9000);
  t.is(parseNetworkOptions({ [G]: { 'com.docker.network.driver.mtu': '68' } }).value.mtu, 68);
  for (const bad of ['abc', '67', '65536', '1400.5', '', -1]) {
    badRequest(t, () => parseNetworkOptions({ [G]: { 'com.docker.network.driver.mtu': bad } }), 'com.docker.network.driver.mtu', JSON.stringify(bad));
  }
});

test('network options: bridge names follow the kernel rules', (t) => {
  const key = 'com.docker.network.bridge.name';
  t.is(parseNetworkOptions({ [G]: { [key]: 'a'.repeat(15) } }).value.bridge.name, 'a'.repeat(15));
  for (const bad of ['a'.repeat(16), 'br/0', 'br:0', 'br 0', 'br\t0', '', '.', '..', 'brü']) {
    badRequest(t, () => parseNetworkOptions({ [G]: { [key]: bad } }), key, JSON.stringify(bad));
  }
});

test('network options: booleans and host binding IP', (t) => {
  const icc = 'com.docker.network.bridge.enable_icc';
  t.true(parseNetworkOptions({ [G]: { [icc]: 'true' } }).value.bridge.enableIcc);
  t.false(parseNetworkOptions({ [G]: { [icc]: '0' } }).value.bridge.enableIcc);
  badRequest(t, () => parseNetworkOptions({ [G]: { [icc]: 'yes' } }), icc, '"yes"');
  badRequest(t, () => parseNetworkOptions({ 'com.docker.network.internal': 'maybe' }), 'com.docker.network.internal', '"maybe"');
  const hb = 'com.docker.network.bridge.host_binding_ipv4';
  t.is(parseNetworkOptions({ [G]: { [hb]: '::FFFF:1.2.3.4' } }).value.bridge.hostBindingIp, '::ffff:102:304');
  badRequest(t, () => parseNetworkOptions({ [G]: { [hb]: '300.1.1.1' } }), hb, '300.1.1.1');
  badRequest(t, () => parseNetworkOptions({ [G]: 'not-a-map' }), G);
});

test('portmap: numeric protocols, ranges, empty IPs', (t) => {
  // Exactly what `-p 8080:80 -p 127.0.0.1:8443:443/udp -p 9000-9002:90/sctp -P` produces.
  const maps = parsePortMap([
    { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
    { Proto: 17, IP: '', Port: 443, HostIP: '127.0.0.1', HostPort: 8443, HostPortEnd: 8443 },
    { Proto: 132, IP: '', Port: 90, HostIP: '', HostPort: 9000, HostPortEnd: 9002 },
    { Proto: 6, IP: '', Port: 5000, HostIP: '', HostPort: 0, HostPortEnd: 0 },
  ]);
  t.deepEqual(maps, [
    { proto: 'tcp', containerIp: undefined, containerPort: 80, hostIp: undefined, hostPort: 8080, hostPortEnd: 8080 },
    { proto: 'udp', containerIp: undefined, containerPort: 443, hostIp: '127.0.0.1', hostPort: 8443, hostPortEnd: 8443 },
    { proto: 'sctp', containerIp: undefined, containerPort: 90, hostIp: undefined, hostPort: 9000, hostPortEnd: 9002 },
    { proto: 'tcp', containerIp: undefined, containerPort: 5000, hostIp: undefined, hostPort: 0, hostPortEnd: 0 },
  ]);
  t.deepEqual(parsePortMap(null), []);
  t.is(parsePortMap([{ Proto: 6, Port: 80, HostPort: 81, HostPortEnd: 0 }])[0].hostPortEnd, 81);
  const key = 'com.docker.network.portmap';
  badRequest(t, () => parsePortMap([{ Proto: 1, Port: 80, HostPort: 80 }]), key, 'Proto 1');
  badRequest(t, () => parsePortMap([{ Proto: 6, Port: 0, HostPort: 80 }]), key, 'Port');
  badRequest(t, () => parsePortMap([{ Proto: 6, Port: 80, HostPort: 70000 }]), key, 'HostPort');
  badRequest(t, () => parsePortMap([{ Proto: 6, Port: 80, HostPort: 90, HostPortEnd: 85 }]), key, 'HostPortEnd');
  badRequest(t, () => parsePortMap([{ Proto: 6, Port: 80, HostIP: 'localhost', HostPort: 90 }]), key, 'HostIP');
  badRequest(t, () => parsePortMap({ Proto: 6 }), key, 'array');
});

test('endpoint options: exposed ports, base64 MAC, driver opts', (t) => {
  const { value, unknown } = parseEndpointOptions({
    'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }, { Proto: 17, Port: 53 }],
    'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }],
    'com.docker.network.endpoint.macaddress': Buffer.from([0x02, 0x42, 0xac, 0x11, 0x00, 0x0a]).toString('base64'),
    'my.driver.opt': 'v',
    'com.docker.network.endpoint.dnsservers': ['1.1.1.1'],
  });
  t.deepEqual(value.exposedPorts, [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 53 }]);
  t.is(value.portMappings.length, 1);
  t.is(value.macAddress, '02:42:ac:11:00:0a');
  t.deepEqual(value.driverOpts, { 'my.driver.opt': 'v' });
  t.deepEqual(unknown.sort(), ['com.docker.network.endpoint.dnsservers', 'my.driver.opt']);
  const mac = 'com.docker.network.endpoint.macaddress';
  badRequest(t, () => parseEndpointOptions({ [mac]: '02:42:ac:11:00:0a' }), mac, '02:42:ac:11:00:0a');
  badRequest(t, () => parseEndpointOptions({ [mac]: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).toString('base64') }), mac, '6-byte');
  badRequest(t, () => parseEndpointOptions({ 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 'x' }] }), 'exposedports', 'Port');
});

test('IPAM options: pool serial flag, gateway request type, MAC, unknown keys', (t) => {
  const pool = parsePoolOptions({ 'com.docker.network.ipam.serial': 'true', 'tsipam.block': '26' });
  t.deepEqual(pool.value, { serial: true, extra: { 'tsipam.block': '26' } });
  t.deepEqual(pool.unknown, ['tsipam.block']);
  t.deepEqual(parsePoolOptions(null).value, { extra: {} });

  const gw = parseAddressOptions({ RequestAddressType: 'com.docker.network.gateway' });
  t.deepEqual(gw.value, { type: 'gateway', extra: {} });
  t.deepEqual(parseAddressOptions(null).value, { extra: {} });
  const mac = parseAddressOptions({ 'com.docker.network.endpoint.macaddress': '02:42:AC:11:00:0A' });
  t.is(mac.value.macAddress, '02:42:ac:11:00:0a');
  badRequest(t, () => parseAddressOptions({ RequestAddressType: 'com.docker.network.other' }), 'RequestAddressType', 'com.docker.network.other');
  badRequest(t, () => parsePoolOptions({ 'com.docker.network.ipam.serial': 'often' }), 'com.docker.network.ipam.serial', 'often');
});

test('addresses: canonical IPs and CIDRs, odd spellings refused', (t) => {
  const fail = (why: string) => new Error(why);
  t.is(parseIp('2001:DB8:0:0::1', fail), '2001:db8::1');
  t.is(parseNetworkCidr('10.1.2.3/16', fail), '10.1.0.0/16');
  t.is(parseAddressCidr('10.1.2.3/16', fail), '10.1.2.3/16');
  t.is(parseNetworkCidr('2001:db8::5/64', fail), '2001:db8::/64');
  for (const bad of ['0x0a.0.0.1', '10.1', '10.1.0.0/33', '10.1.0.0/', '10.1.0.0/+8', 'fe80::1%eth0']) {
    t.throws(() => parseNetworkCidr(bad.includes('/') ? bad : `${bad}/8`, fail), undefined, bad);
  }
});
