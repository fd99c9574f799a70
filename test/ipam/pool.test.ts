// Pure pool logic: validation of requests, ids, gateway and range rules, block geometry.
import test from 'ava';
import { formatAddress, formatCidr, parseAddress } from '../../ipam/cidr.js';
import { IpamError, type IpamErrorCode } from '../../ipam/errors.js';
import { blockAlloc, blockAt, blockName, blockSpan, buildPool, compilePool, handoutCount, isHandout, type PoolRecord, type PoolSpec } from '../../ipam/pool.js';

const BP = { v4: 26, v6: 122 };
const rec = (spec: PoolSpec): PoolRecord => ({ ...buildPool(spec, BP), refs: ['r'], auto: false, created: '', createdBy: 'h' });

function refused(t: import('ava').ExecutionContext, spec: PoolSpec, code: IpamErrorCode, named: string): void {
  const err = t.throws(() => buildPool(spec, BP), { instanceOf: IpamError })!;
  t.is(err.code, code, err.message);
  t.true(err.message.includes(named), `${err.message} should name ${named}`);
}

test('a plain pool: id, gateway = first usable, block prefix', (t) => {
  const p = buildPool({ space: 'local', cidr: '172.18.0.0/16' }, BP);
  t.is(p.id, 'local/172.18.0.0/16');
  t.is(p.gateway, '172.18.0.1');
  t.false(p.gatewayExplicit);
  t.is(p.blockPrefix, 26);
  t.is(p.range, null);
});

test('sub-pool as CIDR or start-end becomes a canonical range in the id', (t) => {
  const a = buildPool({ space: 'global', cidr: '10.1.0.0/16', range: '10.1.5.0/24' }, BP);
  t.is(a.id, 'global/10.1.0.0/16/10.1.5.0-10.1.5.255');
  const b = buildPool({ space: 'local', cidr: '10.1.0.0/24', range: { start: '10.1.0.0', end: '10.1.0.9' } }, BP);
  // The network address is never usable, so the range starts at .1.
  t.deepEqual(b.range, { start: '10.1.0.1', end: '10.1.0.9' });
  const v6 = buildPool({ space: 'local', cidr: 'fd00:1::/64', range: { start: 'fd00:1::100', end: 'fd00:1::1ff' } }, BP);
  t.is(v6.id, 'local/fd00:1::/64/fd00:1::100-fd00:1::1ff');
  t.is(v6.blockPrefix, 122);
});

test('pools smaller than a block are one block', (t) => {
  const p = compilePool(rec({ space: 'local', cidr: '10.9.0.0/29' }));
  t.is(p.blockPrefix, 29);
  t.deepEqual(blockSpan(p), { first: 0n, last: 0n });
  t.is(blockName(p, parseAddress('10.9.0.3').value), '10.9.0.0/29');
});

test('bad requests name the offending value', (t) => {
  refused(t, { space: 'local', cidr: '10.0.0.1/24' }, 'invalid-cidr', '10.0.0.1/24');
  refused(t, { space: 'local', cidr: 'banana' }, 'invalid-cidr', 'banana');
  refused(t, { space: 'elsewhere' as 'local', cidr: '10.0.0.0/24' }, 'unknown-address-space', 'elsewhere');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', gateway: '10.0.1.1' }, 'gateway-outside-subnet', '10.0.1.1');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', gateway: '10.0.0.255' }, 'invalid-gateway', '10.0.0.255');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', gateway: 'x' }, 'invalid-address', 'x');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: '10.0.1.0/25' }, 'range-outside-subnet', '10.0.1.0/25');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: '10.0.0.0/23' }, 'range-outside-subnet', '10.0.0.0/23');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: { start: '10.0.0.5', end: '10.0.1.5' } }, 'range-outside-subnet', '10.0.1.5');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: { start: '10.0.0.9', end: '10.0.0.5' } }, 'invalid-range', '10.0.0.9');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: '10.0.0.255/32' }, 'invalid-range', '10.0.0.255/32');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', range: 'fd00::/120' }, 'range-outside-subnet', 'fd00::/120');
  refused(t, { space: 'local', cidr: '10.0.0.0/24', reserved: ['10.0.0.5', '10.0.9.9'] }, 'address-outside-pool', '10.0.9.9');
});

test('gateway and reserved addresses are never handed out; network and broadcast neither', (t) => {
  const p = compilePool(rec({ space: 'local', cidr: '10.0.0.0/29', reserved: ['10.0.0.5', '10.0.0.5'] }));
  const handed = [];
  for (let v = p.cidr.base; v <= p.cidr.base + 7n; v++) if (isHandout(p, v)) handed.push(formatAddress(4, v));
  t.deepEqual(handed, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.6']);
  t.is(handoutCount(p), 4n);
  t.deepEqual(p.rec.reserved, ['10.0.0.5']);
});

test('/31 and /32 (RFC 3021) and IPv6 /127 /128', (t) => {
  const p31 = compilePool(rec({ space: 'local', cidr: '10.0.0.0/31' }));
  t.is(p31.rec.gateway, '10.0.0.0');
  t.true(isHandout(p31, parseAddress('10.0.0.1').value));
  t.is(handoutCount(p31), 1n);
  const p32 = compilePool(rec({ space: 'local', cidr: '10.0.0.9/32' }));
  t.is(p32.rec.gateway, null);
  t.is(handoutCount(p32), 1n);
  const p127 = compilePool(rec({ space: 'local', cidr: 'fd00::/127' }));
  t.is(handoutCount(p127), 1n);
  const p128 = compilePool(rec({ space: 'local', cidr: 'fd00::7/128' }));
  t.is(handoutCount(p128), 1n);
  t.true(isHandout(p128, parseAddress('fd00::7').value));
});

test('blocks: geometry inside a range', (t) => {
  const p = compilePool(rec({ space: 'local', cidr: '10.0.0.0/24', range: { start: '10.0.0.60', end: '10.0.0.130' } }));
  t.deepEqual(blockSpan(p), { first: 0n, last: 2n });
  const b1 = blockAt(p, 1n);
  t.is(formatCidr(b1), '10.0.0.64/26');
  const a = blockAlloc(p, blockAt(p, 2n))!;
  t.deepEqual([formatAddress(4, a.start), formatAddress(4, a.end)], ['10.0.0.128', '10.0.0.130']);
  t.is(blockAlloc(p, blockAt(p, 3n)), undefined);
});
