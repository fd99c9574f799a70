// Mapping internal errors to CNI codes, and chaining results.
import test from 'ava';
import { CniError, toCniError } from '../../plugins/cni/errors.js';
import { assignInterface, extendResult } from '../../plugins/cni/result.js';
import { IpamError } from '../../ipam/errors.js';
import { StoreError } from '../../store/errors.js';
import { KernelError, invalid } from '../../netlink/errors.js';

function internal(code: string | undefined, kind: string, retryable: boolean, message = 'boom'): Error {
  return Object.assign(new Error(message), { code, kind, retryable });
}

test('internal error codes map to the DESIGN table', (t) => {
  const cases: Array<[unknown, number]> = [
    [internal('pool-exhausted', 'conflict', false), 100],
    [internal('address-taken', 'conflict', false), 101],
    [internal('port-taken', 'conflict', false), 101],
    [internal('interface-exists', 'conflict', false), 102],
    [internal('store-unavailable', 'unavailable', true), 11],
    [internal('SQLITE_BUSY', 'unavailable', false), 11],
    [internal('whatever', 'unavailable', false), 11],
    [internal('lease-lost', 'internal', true), 11],
    [internal('invalid-config', 'bad-request', false), 7],
    [internal('bad-cidr', 'bad-request', false), 7],
    [internal('unsupported', 'bad-request', false), 2],
    [internal(undefined, 'internal', false), 999],
    [new Error('plain'), 999],
    ['a string', 999],
    [Object.assign(new Error('x'), { cniCode: 51 }), 51],
  ];
  for (const [err, code] of cases) t.is(toCniError(err).code, code, String((err as Error).message ?? err));
});

test('a kernel errno becomes 110 with the errno name in msg and the tool stderr in details', (t) => {
  const e = toCniError(new KernelError('EEXIST', 'cannot create link veth1', { stderr: 'RTNETLINK answers: File exists\n' }));
  t.is(e.code, 110);
  t.regex(e.msg, /^EEXIST: cannot create link veth1$/);
  t.is(e.details, 'RTNETLINK answers: File exists');
  t.is(toCniError(new KernelError('EPERM', 'EPERM: operation not permitted')).msg, 'EPERM: operation not permitted');
  t.is(toCniError(new KernelError('EKERNEL', 'odd')).code, 110);
  // A value netlink refused before running anything is a config problem.
  t.is(toCniError(invalid('mtu', 70000, 'too large')).code, 7);
});

test('the real IPAM and store errors map as DESIGN.md says', (t) => {
  t.is(toCniError(new IpamError('pool-exhausted', 'no free address in 10.0.0.0/30')).code, 100);
  t.is(toCniError(new IpamError('address-taken', 'address 10.0.0.5 is taken')).code, 101);
  t.is(toCniError(new IpamError('gateway-outside-subnet', 'gateway 10.1.0.1 outside 10.0.0.0/24')).code, 7);
  t.is(toCniError(new IpamError('contention', 'lost the race 5 times')).code, 11);
  t.is(toCniError(new StoreError('unavailable', 'etcd down')).code, 11);
  t.is(toCniError(new StoreError('timeout', 'deadline')).code, 11);
  t.is(toCniError(new StoreError('internal', 'corrupt')).code, 999);
});

test('CniError passes through and prints the wire shape', (t) => {
  const e = new CniError(7, 'invalid subnet "x"', 'want a CIDR');
  t.is(toCniError(e), e);
  t.deepEqual(e.toWire('0.4.0'), { cniVersion: '0.4.0', code: 7, msg: 'invalid subnet "x"', details: 'want a CIDR' });
  t.deepEqual(new CniError(11, 'busy').toWire('1.1.0'), { cniVersion: '1.1.0', code: 11, msg: 'busy' });
  t.true(new CniError(11, 'busy').retryable);
  t.is(new CniError(101, 'taken').kind, 'conflict');
});

test('extendResult keeps prevResult and shifts the new interface indices', (t) => {
  const prev = { interfaces: [{ name: 'eth0', sandbox: '/run/netns/a' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], dns: { nameservers: ['10.0.0.1'] } };
  const add = {
    interfaces: [{ name: 'br0' }, { name: 'net1', sandbox: '/run/netns/a' }],
    ips: [{ address: '10.1.0.2/24', interface: 1 }],
    routes: [{ dst: '10.9.0.0/16', gw: '10.1.0.1' }],
    dns: { nameservers: ['10.0.0.1', '10.1.0.1'], search: ['x'] },
  };
  const out = extendResult(prev, add);
  t.deepEqual(out, {
    interfaces: [{ name: 'eth0', sandbox: '/run/netns/a' }, { name: 'br0' }, { name: 'net1', sandbox: '/run/netns/a' }],
    ips: [{ address: '10.0.0.2/24', interface: 0 }, { address: '10.1.0.2/24', interface: 2 }],
    routes: [{ dst: '10.9.0.0/16', gw: '10.1.0.1' }],
    dns: { nameservers: ['10.0.0.1', '10.1.0.1'], search: ['x'] },
  });
  t.deepEqual(prev.ips, [{ address: '10.0.0.2/24', interface: 0 }], 'input untouched');
  t.deepEqual(extendResult(prev, { ips: [{ address: '10.0.0.3/24', interface: 0 }] }).ips![1], { address: '10.0.0.3/24', interface: 0 });
  t.deepEqual(extendResult(undefined, {}), {});
  t.deepEqual(assignInterface({ ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }] }, 2), [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 }]);
});
