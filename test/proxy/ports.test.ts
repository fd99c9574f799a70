// Port-spec parsing (Docker CLI, Docker portmap wire, CNI portMappings) and bad input.
import test from 'ava';
import { ProxyError, type ProxyErrorCode } from '../../proxy/errors.js';
import { fromCniPortMappings, fromDockerPortMap, parsePortSpec, publishAll } from '../../proxy/ports.js';

const r = (proto: string, containerPort: number, hostIp: string, hostPort: number, hostPortEnd = hostPort) => ({ proto, containerPort, hostIp, hostPort, hostPortEnd });

test('Docker CLI forms', (t) => {
  t.deepEqual(parsePortSpec('8080:80'), [r('tcp', 80, '', 8080)]);
  t.deepEqual(parsePortSpec('127.0.0.1:8080:80/udp'), [r('udp', 80, '127.0.0.1', 8080)]);
  t.deepEqual(parsePortSpec('10.0.0.1::80'), [r('tcp', 80, '10.0.0.1', 0)]);
  t.deepEqual(parsePortSpec('80'), [r('tcp', 80, '', 0)]);
  t.deepEqual(parsePortSpec('[2001:DB8::1]:8080:80/sctp'), [r('sctp', 80, '2001:db8::1', 8080)]);
  t.deepEqual(parsePortSpec('[::1]::80'), [r('tcp', 80, '::1', 0)]);
  t.deepEqual(parsePortSpec('8000-8002:80-82'), [r('tcp', 80, '', 8000), r('tcp', 81, '', 8001), r('tcp', 82, '', 8002)]);
  t.deepEqual(parsePortSpec('8000-8010:80'), [r('tcp', 80, '', 8000, 8010)], 'any free port of the host range');
  t.deepEqual(parsePortSpec('80-81'), [r('tcp', 80, '', 0), r('tcp', 81, '', 0)]);
});

test('bad CLI specs are clear errors', (t) => {
  const cases: [string, ProxyErrorCode][] = [
    ['0:80', 'invalid-port'],
    ['8080:0', 'invalid-port'],
    ['70000:80', 'invalid-port'],
    ['8010-8000:80-90', 'invalid-range'],
    ['8000-8010:80-85', 'invalid-range'],
    ['8080:80/icmp', 'invalid-protocol'],
    ['300.1.1.1:8080:80', 'invalid-address'],
    ['::1:8080:80', 'invalid-spec'],
    ['a:b', 'invalid-port'],
    ['', 'invalid-spec'],
  ];
  for (const [spec, code] of cases) {
    const err = t.throws(() => parsePortSpec(spec), { instanceOf: ProxyError }, spec);
    t.is(err?.code, code, spec);
    t.is(err?.kind, 'bad-request');
  }
});

test('Docker portmap wire form', (t) => {
  const wire = [
    { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
    { Proto: 17, IP: '', Port: 53, HostIP: '127.0.0.1', HostPort: 0, HostPortEnd: 0 },
    { Proto: 132, Port: 9, HostIP: '::', HostPort: 9000, HostPortEnd: 9005 },
  ];
  t.deepEqual(fromDockerPortMap(wire), [r('tcp', 80, '', 8080), r('udp', 53, '127.0.0.1', 0), r('sctp', 9, '::', 9000, 9005)]);
  t.deepEqual(fromDockerPortMap(null), []);
  t.throws(() => fromDockerPortMap([{ Proto: 1, Port: 80, HostPort: 1 }]), { code: 'invalid-protocol' });
  t.throws(() => fromDockerPortMap([{ Proto: 6, Port: 80, HostPort: 90, HostPortEnd: 80 }]), { code: 'invalid-range' });
  t.throws(() => fromDockerPortMap({}), { code: 'invalid-spec' });
});

test('CNI portMappings and -P', (t) => {
  t.deepEqual(fromCniPortMappings([{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }, { hostPort: 53, containerPort: 53, protocol: 'UDP', hostIP: '10.0.0.1' }]), [
    r('tcp', 80, '', 8081),
    r('udp', 53, '10.0.0.1', 53),
  ]);
  t.throws(() => fromCniPortMappings([{ hostPort: 0, containerPort: 80 }]), { code: 'invalid-port' });
  t.deepEqual(publishAll([{ Proto: 6, Port: 80 }, { proto: 'udp', port: 53 }]), [r('tcp', 80, '', 0), r('udp', 53, '', 0)]);
});
