import test from 'ava';
import { keys, PREFIX, segment, parseKey, lastSegment, KeyError } from '../../store/keys.js';

test('every key lives under the one prefix', (t) => {
  t.is(keys.host('h1'), `${PREFIX}hosts/h1`);
  t.true(keys.endpoint('net', 'ep').startsWith(PREFIX));
  t.true(keys.networkEndpoints('net').endsWith('/'));
  t.true(keys.endpoint('net', 'ep').startsWith(keys.networkEndpoints('net')));
});

test('a CIDR stays one segment and round-trips', (t) => {
  const k = keys.ipamBlock('local/172.18.0.0/16', '172.18.0.64/26');
  t.is(k, `${PREFIX}ipam/blocks/local%2F172.18.0.0%2F16/172.18.0.64%2F26`);
  t.deepEqual(parseKey(k), ['ipam', 'blocks', 'local/172.18.0.0/16', '172.18.0.64/26']);
  t.is(lastSegment(k), '172.18.0.64/26');
});

test('IPv6 addresses and unicode names are escaped, not split', (t) => {
  t.is(segment('fd00::1'), 'fd00::1');
  const k = keys.service('wéb svc');
  t.deepEqual(parseKey(k), ['services', 'wéb svc']);
});

test('names that could climb or split the key space are refused', (t) => {
  for (const bad of ['', '.', '..']) t.throws(() => keys.network(bad), { instanceOf: KeyError });
  t.throws(() => keys.network('x'.repeat(300)), { instanceOf: KeyError });
  // "../x" is escaped into a single harmless segment.
  t.is(keys.network('../x'), `${PREFIX}networks/..%2Fx`);
});

test('prefixes of different record kinds never overlap', (t) => {
  t.false(keys.network('a').startsWith(keys.networkNames()));
  t.false(keys.ipamPool('p').startsWith(keys.ipamPoolRefs('p')));
  // A range over network "a" must not pick up endpoints of network "ab".
  t.false(keys.endpoint('ab', 'x').startsWith(keys.networkEndpoints('a')));
});

test('IPAM addresses nest under their block and pool; spaces are separate records', (t) => {
  const pool = 'local/10.0.0.0/16';
  const k = keys.ipamBlockAddress(pool, '10.0.0.64/26', '10.0.0.70');
  t.true(k.startsWith(keys.ipamBlockAddresses(pool, '10.0.0.64/26')));
  t.true(k.startsWith(keys.ipamAddresses(pool)));
  t.false(k.startsWith(keys.ipamBlockAddresses(pool, '10.0.0.0/26')));
  t.deepEqual(parseKey(k).slice(-3), [pool, '10.0.0.64/26', '10.0.0.70']);
  t.false(keys.ipamSpace('local').startsWith(keys.ipamPools()));
  t.true(keys.ipamCursor(pool, 'h1').startsWith(keys.ipamCursors(pool)));
  t.false(keys.ipamBlockAddress('local/10.0.0.0/1', '10.0.0.0/26', '10.0.0.1').startsWith(keys.ipamAddresses('local/10.0.0.0/16')));
});
