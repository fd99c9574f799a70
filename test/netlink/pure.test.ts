// netlink/ without the kernel: validation, batch rendering (golden argument lists), error
// classification of real iproute2/nsenter/sysctl messages, and JSON parsing quirks.
import test from 'ava';
import {
  Batch,
  classify,
  confSysctlKey,
  KernelError,
  parseCidr,
  parseFdb,
  parseLinks,
  validateIfName,
  validateMac,
  validateNetnsPath,
  validateSysctlKey,
  validateSysctlValue,
} from '../../netlink/index.js';

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof KernelError) return `${err.code}/${err.kind}`;
    throw err;
  }
  return 'ok';
}

test('interface names: 1–15 bytes, no / : whitespace, not . or .., safe charset', (t) => {
  for (const ok of ['eth0', 'br-0123456789ab', 'veth1.2', 'a', 'x_y', '123456789012345']) t.is(validateIfName(ok), ok);
  for (const bad of ['', '1234567890123456', 'a/b', 'a:b', 'a b', '.', '..', '-x', 'a"b', 'a#b', 'é', 'a\nb', 'a\\b']) {
    t.is(code(() => validateIfName(bad)), 'EINVAL/bad-request', bad);
  }
  t.is(code(() => validateIfName(3 as unknown as string)), 'EINVAL/bad-request');
});

test('MACs, IPs, CIDRs and namespace paths are checked before any command line', (t) => {
  t.is(validateMac('02:AA:bb:00:00:01'), '02:aa:bb:00:00:01');
  t.is(code(() => validateMac('02:aa:bb:00:00')), 'EINVAL/bad-request');
  t.deepEqual(parseCidr('10.1.2.3/24'), { address: '10.1.2.3', prefixLen: 24, family: 4 });
  t.deepEqual(parseCidr('fd00::1'), { address: 'fd00::1', prefixLen: 128, family: 6 });
  for (const bad of ['10.1.2.3/33', 'fd00::1/129', '10.1.2/24', 'fe80::1%eth0/64', '10.0.0.1/ 8', 'x']) {
    t.is(code(() => parseCidr(bad)), 'EINVAL/bad-request', bad);
  }
  for (const ok of ['/var/run/netns/x', '/proc/123/ns/net', '/run/netns/netns-0b2c1e4e-aaaa-bbbb-cccc-0123456789ab']) {
    t.is(validateNetnsPath(ok), ok);
  }
  for (const bad of ['relative/x', '/a b', '/a/../b', '/a"b', '/a#b', '']) t.is(code(() => validateNetnsPath(bad)), 'EINVAL/bad-request', bad);
});

test('sysctl keys: only net.*, dotted or slash form; values plain', (t) => {
  t.is(validateSysctlKey('net.ipv4.ip_forward'), 'net/ipv4/ip_forward');
  t.is(validateSysctlKey('net/ipv4/conf/eth0.5/forwarding'), 'net/ipv4/conf/eth0.5/forwarding');
  for (const bad of ['kernel.hostname', 'vm.swappiness', 'net', 'net..x', 'net/ipv4/../../kernel/x', 'net.ipv4.a b', 'net/ipv4/x=1']) {
    t.is(code(() => validateSysctlKey(bad)), 'EINVAL/bad-request', bad);
  }
  t.is(confSysctlKey(6, 'eth0.5', 'accept_ra'), 'net/ipv6/conf/eth0.5/accept_ra');
  t.is(confSysctlKey(4, 'all', 'route_localnet'), 'net/ipv4/conf/all/route_localnet');
  t.is(code(() => confSysctlKey(4, 'a/b', 'x')), 'EINVAL/bad-request');
  t.is(validateSysctlValue(true), '1');
  t.is(validateSysctlValue(0), '0');
  t.is(validateSysctlValue('0 2147483647'), '0 2147483647');
  t.is(code(() => validateSysctlValue('1\n')), 'EINVAL/bad-request');
});

test('batch renders iproute2 lines in order, one tool per command', (t) => {
  const b = new Batch()
    .linkAdd({ kind: 'veth', name: 'vethA', mtu: 1450, master: 'br0', up: true, group: 9, peer: { name: 'eth0', netns: '/proc/42/ns/net', mtu: 1450 } })
    .linkAdd({ kind: 'vxlan', name: 'vx42', vni: 42, local: '192.0.2.1', dev: 'eth1', mtu: 1450 })
    .linkAdd({ kind: 'macvlan', name: 'mv0', parent: 'eth1', netns: '/var/run/netns/c' })
    .linkAdd({ kind: 'veth', name: 'vh', netns: '/proc/1/ns/net', masterIndex: 7, up: true, peer: { name: 'eth0' } })
    .linkSet('eth0', { up: false, name: 'eth9', mac: '02:00:00:00:00:01' })
    .linkSet('br0', { master: null, netns: '/var/run/netns/c' })
    .bridgePortSet('vethA', { hairpin: true, learning: false })
    .addrAdd('eth0', 'fd00::2/64', { noDad: true })
    .routeAdd({ dst: 'default', via: 'fd00::1', dev: 'eth0', onlink: true, table: 100, metric: 5 })
    .neighReplace({ dst: '10.0.0.9', lladdr: '02:00:00:00:00:09', dev: 'vx42' })
    .fdbAppend({ mac: '02:00:00:00:00:09', dev: 'vx42', dst: '192.0.2.2' })
    .fdbAdd({ mac: '02:00:00:00:00:09', dev: 'vx42' })
    .linkDeleteGroup(9);
  t.deepEqual(
    b.commands.map((c) => `${c.tool} ${c.args.join(' ')}`),
    [
      'ip link add name vethA mtu 1450 group 9 master br0 up type veth peer name eth0 mtu 1450 netns /proc/42/ns/net',
      'ip link add name vx42 mtu 1450 type vxlan id 42 local 192.0.2.1 dstport 4789 nolearning dev eth1',
      'ip link add link eth1 name mv0 netns /var/run/netns/c type macvlan mode bridge',
      'ip link add name vh netns /proc/1/ns/net master if7/ up type veth peer name eth0',
      'ip link set dev eth0 down',
      'ip link set dev eth0 name eth9 address 02:00:00:00:00:01',
      'ip link set dev br0 nomaster',
      'ip link set dev br0 netns /var/run/netns/c',
      'ip link set dev vethA type bridge_slave hairpin on learning off',
      'ip addr add fd00::2/64 dev eth0 nodad',
      'ip route add ::/0 via fd00::1 dev eth0 onlink table 100 metric 5',
      'ip neigh replace 10.0.0.9 lladdr 02:00:00:00:00:09 dev vx42 nud permanent',
      'bridge fdb append 02:00:00:00:00:09 dev vx42 dst 192.0.2.2 self permanent',
      'bridge fdb add 02:00:00:00:00:09 dev vx42 master static',
      'ip link del group 9',
    ],
  );
});

test('batch refuses bad input at build time, including group 0 and mixed families', (t) => {
  const b = new Batch();
  t.is(code(() => b.linkDeleteGroup(0)), 'EINVAL/bad-request');
  t.is(code(() => b.routeAdd({ dst: '10.0.0.0/8', via: 'fd00::1' })), 'EINVAL/bad-request');
  t.is(code(() => b.linkAdd({ kind: 'vxlan', name: 'vx', vni: 1 << 24 })), 'EINVAL/bad-request');
  t.is(code(() => b.linkAdd({ kind: 'bridge', name: 'b', master: 'x', netns: '/run/netns/y' })), 'EINVAL/bad-request');
  t.is(code(() => b.linkSet('eth0', { up: true, netns: '/run/netns/y' })), 'EINVAL/bad-request');
  t.is(code(() => b.linkAdd({ kind: 'dummy', name: 'd' } as never)), 'EINVAL/bad-request');
  t.is(code(() => b.neighReplace({ dst: '10.0.0.1', dev: 'eth0' })), 'EINVAL/bad-request');
  t.is(b.size, 0);
});

test('tool messages map to errno-like codes', (t) => {
  const cases: Array<[string, string]> = [
    ['RTNETLINK answers: File exists', 'EEXIST'],
    ['Error: ipv4: Address already assigned.', 'EEXIST'],
    ['Cannot find device "nope"', 'ENODEV'],
    ['Error: argument "nobr" is wrong: Device does not exist', 'ENODEV'],
    ['RTNETLINK answers: No such process', 'ESRCH'],
    ['Error: ipv4: Address not found.', 'EADDRNOTAVAIL'],
    ['RTNETLINK answers: No such file or directory', 'ENOENT'],
    ['Error: argument "/var/run/netns/x" is wrong: Invalid "netns" value', 'ENOENT'],
    ['sysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory', 'ENOENT'],
    ['RTNETLINK answers: Device or resource busy', 'EBUSY'],
    ['RTNETLINK answers: Operation not permitted', 'EPERM'],
    ['Error: Nexthop has invalid gateway.', 'ENETUNREACH'],
    ['Error: Unknown device type.', 'EOPNOTSUPP'],
    ['Object "foo" is unknown, try "ip help".', 'EINVAL'],
    ['Error: mtu greater than device maximum.', 'EINVAL'],
    ['sysctl: setting key "net.ipv4.ip_forward": Invalid argument', 'EINVAL'],
    ['Error: ipv6: FIB table does not exist.', 'ENOENT'],
    ['RTNETLINK answers: Transport endpoint is not connected', 'ENOTCONN'],
    ['something new', 'EKERNEL'],
  ];
  for (const [msg, want] of cases) t.is(classify(msg), want, msg);
  const e = new KernelError('EBUSY', 'busy');
  t.is(e.kind, 'conflict');
  t.true(e.retryable);
  t.false(new KernelError('EEXIST', 'x').retryable);
});

test('parsers tolerate iproute2 quirks: {} for filtered links, no ifname under fdb dev', (t) => {
  const links = parseLinks('[{},{"ifindex":3,"ifname":"a1","flags":["UP"],"mtu":1500,"operstate":"UP","group":"7","link":"b1"}]');
  t.is(links.length, 1);
  t.like(links[0], { name: 'a1', up: true, group: 7, parent: 'b1' });
  t.is(parseLinks('[{"ifname":"lo","group":"default","flags":[]}]')[0]!.group, 0);
  const fdb = parseFdb('[{"mac":"02:00:00:00:00:09","dst":"192.0.2.2","flags":["self"],"state":"permanent"}]', 'vx0');
  t.like(fdb[0], { dev: 'vx0', self: true, dst: '192.0.2.2', state: 'permanent' });
  t.deepEqual(parseLinks(''), []);
  t.is(code(() => parseLinks('garbage')), 'EKERNEL/internal');
});
