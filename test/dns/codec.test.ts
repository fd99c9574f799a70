// The wire codec: names (compression, loops, limits), query parsing, reply encoding with
// compression and truncation; replies are cross-checked with dns2's independent parser.
import test from 'ava';
import dns2 from 'dns2';
import { addressOfReverse, parseAddress, reverseName } from '../../dns/address.js';
import { RCODE, T } from '../../dns/constants.js';
import { codeReply, Encoder, type RR } from '../../dns/encode.js';
import { decodeMessage, ipv6Text, parseQuery } from '../../dns/message.js';
import { isSubdomain, keyToWire, nameKey, readName } from '../../dns/name.js';
import { skydnsKey, skydnsName } from '../../store/keys.js';
import { buildQuery } from './helpers.js';

const { Packet } = dns2;

test('readName follows backward pointers, lowercases, keeps the sender case on the wire', (t) => {
  const msg = Buffer.concat([Buffer.alloc(12), Buffer.from([3, 87, 69, 66, 3, 99, 111, 109, 0]), Buffer.from([1, 120, 0xc0, 12])]);
  const a = readName(msg, 12)!;
  t.is(a.key, 'web.com');
  t.is(a.wire.toString('latin1', 1, 4), 'WEB');
  const b = readName(msg, 21)!;
  t.is(b.key, 'x.web.com');
  t.is(b.end, msg.length);
  t.deepEqual([...b.wire], [1, 120, 3, 87, 69, 66, 3, 99, 111, 109, 0]);
});

test('readName refuses loops, forward pointers, pointers into the header, long names, bad label types', (t) => {
  const hdr = Buffer.alloc(12);
  t.is(readName(Buffer.concat([hdr, Buffer.from([0xc0, 12])]), 12), undefined, 'self loop');
  t.is(readName(Buffer.concat([hdr, Buffer.from([1, 97, 0xc0, 12])]), 12), undefined, 'loop via label');
  t.is(readName(Buffer.concat([hdr, Buffer.from([0xc0, 14, 0])]), 12), undefined, 'forward');
  t.is(readName(Buffer.concat([hdr, Buffer.from([0xc0, 2])]), 12), undefined, 'into header');
  t.is(readName(Buffer.concat([hdr, Buffer.from([0x40, 1, 0])]), 12), undefined, 'extended label');
  t.is(readName(Buffer.concat([hdr, Buffer.from([5, 97])]), 12), undefined, 'truncated');
  const long = Buffer.concat([hdr, ...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 97)])), Buffer.from([0])]);
  t.is(readName(long, 12), undefined, '> 255 octets');
  const odd = readName(Buffer.concat([hdr, Buffer.from([3, 97, 46, 0, 0])]), 12)!;
  t.is(odd.key, 'a\\046\\000', 'dots and binary bytes are escaped');
});

test('nameKey validates record names', (t) => {
  t.is(nameKey('Web.Front.'), 'web.front');
  t.is(nameKey('my_app'), 'my_app');
  t.is(nameKey(''), undefined);
  t.is(nameKey('a..b'), undefined);
  t.is(nameKey('bad name'), undefined);
  t.is(nameKey('x'.repeat(64)), undefined);
  t.is(nameKey(42), undefined);
  t.true(isSubdomain('a.tsoverlay', 'tsoverlay'));
  t.false(isSubdomain('atsoverlay', 'tsoverlay'));
  t.deepEqual([...keyToWire('ab.c')], [2, 97, 98, 1, 99, 0]);
});

test('addresses and reverse names', (t) => {
  t.is(parseAddress('10.0.0.2/24')!.ip, '10.0.0.2');
  t.is(parseAddress('FD00:0:0::2/64')!.ip, 'fd00::2');
  t.is(parseAddress('::ffff:10.1.2.3')!.ip, '10.1.2.3');
  t.is(parseAddress('fe80::1%eth0')!.ip, 'fe80::1');
  t.is(parseAddress('010.0.0.1'), undefined);
  t.is(parseAddress('host'), undefined);
  t.is(reverseName(parseAddress('10.0.0.2')!), '2.0.0.10.in-addr.arpa');
  const v6 = parseAddress('fd00::2')!;
  t.is(addressOfReverse(reverseName(v6)), 'fd00::2');
  t.is(addressOfReverse('2.0.0.10.in-addr.arpa'), '10.0.0.2');
  t.is(addressOfReverse('0.10.in-addr.arpa'), undefined);
  t.is(ipv6Text(Buffer.from('20010db8000000000001000000000001', 'hex')), '2001:db8::1:0:0:1');
  t.is(ipv6Text(Buffer.from('20010db8000100000001000100010001', 'hex')), '2001:db8:1:0:1:1:1:1');
});

test('skydns keys map to names and back', (t) => {
  t.is(skydnsKey('rails.east.skydns.local.'), '/skydns/local/skydns/east/rails');
  t.is(skydnsName('/skydns/local/skydns/east/rails/x1'), 'x1.rails.east.skydns.local');
  t.is(skydnsName('/other/x'), undefined);
});

test('parseQuery: question, OPT, and the error codes', (t) => {
  const q = parseQuery(buildQuery('Web.Front.tsoverlay', T.AAAA, { edns: 4096, dnssecOk: true }))!;
  t.is(q.question!.name, 'web.front.tsoverlay');
  t.is(q.question!.type, T.AAAA);
  t.deepEqual(q.edns, { udpSize: 4096, version: 0, dnssecOk: true });
  t.is(q.error, undefined);
  t.is(parseQuery(buildQuery('a', 1, { edns: 100 }))!.edns!.udpSize, 512, 'sizes below 512 count as 512');
  t.is(parseQuery(buildQuery('a', 1, { edns: 1232, ednsVersion: 1 }))!.error, RCODE.BADVERS);
  t.is(parseQuery(Buffer.alloc(11)), undefined, 'shorter than a header: dropped');
  const resp = buildQuery('a', 1);
  resp[2]! |= 0x80;
  t.is(parseQuery(resp), undefined, 'responses are dropped');
  const notify = buildQuery('a', 1);
  notify[2] = 4 << 3;
  t.is(parseQuery(notify)!.error, RCODE.NOTIMP);
  const two = buildQuery('a', 1);
  two.writeUInt16BE(2, 4);
  t.is(parseQuery(two)!.error, RCODE.FORMERR);
  const none = buildQuery('a', 1);
  none.writeUInt16BE(0, 4);
  t.is(parseQuery(none)!.error, RCODE.FORMERR);
  t.is(parseQuery(buildQuery('a', 1).subarray(0, 16))!.error, RCODE.FORMERR, 'truncated question');
  const twoOpt = buildQuery('a', 1, { edns: 1232 });
  twoOpt.writeUInt16BE(2, 10);
  t.is(parseQuery(Buffer.concat([twoOpt, twoOpt.subarray(twoOpt.length - 11)]))!.error, RCODE.FORMERR, 'two OPT');
  const badArcount = buildQuery('a', 1);
  badArcount.writeUInt16BE(3, 10);
  t.is(parseQuery(badArcount)!.error, RCODE.FORMERR, 'records promised but missing');
});

const addr = (s: string) => parseAddress(s)!.bytes;

test('encoder compresses names against the question and earlier records; dns2 parses the result', (t) => {
  const query = parseQuery(buildQuery('_http._tcp.api.tsoverlay', T.SRV, { edns: 1232 }))!;
  const answers: RR[] = [1, 2, 3].map((i) => ({ name: '_http._tcp.api.tsoverlay', type: T.SRV, ttl: 30, priority: 0, weight: 10, port: 80, target: `10-0-0-${i}.api.tsoverlay` }));
  const additional: RR[] = [1, 2, 3].map((i) => ({ name: `10-0-0-${i}.api.tsoverlay`, type: T.A, ttl: 30, addr: addr(`10.0.0.${i}`) }));
  const out = new Encoder().encode(query, { rcode: 0, authoritative: true, recursion: true, answers, authority: [], additional }, 1232);
  const m = decodeMessage(out)!;
  t.is(m.id, 0x1234);
  t.is(m.answers.length, 3);
  t.deepEqual(m.answers[0]!.data, { priority: 0, weight: 10, port: 80, target: '10-0-0-1.api.tsoverlay' });
  t.is(m.additional.length, 4, '3 A + OPT');
  t.is(m.additional[2]!.data, '10.0.0.3');
  // 12 header + 30 question + 3 × (2 owner pointer + 10 + 6 + 24 uncompressed SRV target, RFC 2782)
  // + 3 × (2 pointer into the SRV target + 10 + 4) + 11 OPT.
  t.is(out.length, 12 + 30 + 3 * 42 + 3 * 16 + 11);
  const p = Packet.parse(out);
  t.is(p.answers.length, 3);
  t.is(p.answers[1].target, '10-0-0-2.api.tsoverlay');
  t.is(p.additionals[0].address, '10.0.0.1');
});

test('encoder truncates to the client size with TC and never exceeds it', (t) => {
  const query = parseQuery(buildQuery('many', T.A))!;
  const answers: RR[] = Array.from({ length: 100 }, (_, i) => ({ name: 'many', type: T.A, ttl: 5, addr: addr(`10.0.${i >> 8}.${i & 255}`) }));
  const enc = new Encoder();
  const reply = { rcode: 0, authoritative: true, recursion: false, answers, authority: [], additional: [] };
  const small = enc.encode(query, reply, 512);
  t.true(small.length <= 512);
  const m = decodeMessage(small)!;
  t.truthy(m.flags & 0x0200, 'TC set');
  t.is(m.answers.length, Math.floor((512 - 12 - 9) / 16), 'the answers that fit');
  t.is(m.questions[0]!.name, 'many');
  const big = enc.encode(query, reply, 65535);
  t.is(decodeMessage(big)!.answers.length, 100);
  t.false(Boolean(decodeMessage(big)!.flags & 0x0200));
});

test('encoder: rcodes above 15 travel in OPT; SOA, TXT, PTR round-trip', (t) => {
  const q = parseQuery(buildQuery('x', 1, { edns: 1232, ednsVersion: 1 }))!;
  const out = new Encoder().encode({ ...q }, codeReply(RCODE.BADVERS), 512);
  t.is(decodeMessage(out)!.rcode, RCODE.BADVERS);
  t.is(Packet.parse(out).header.rcode, RCODE.BADVERS);
  const q2 = parseQuery(buildQuery('2.0.0.10.in-addr.arpa', T.PTR))!;
  const rrs: RR[] = [
    { name: '2.0.0.10.in-addr.arpa', type: T.PTR, ttl: 5, target: 'web.front.tsoverlay' },
    { name: 'tsoverlay', type: T.TXT, ttl: 5, txt: ['a=b', 'c'] },
    { name: 'tsoverlay', type: T.SOA, ttl: 5, mname: 'ns.tsoverlay', rname: 'hostmaster.tsoverlay', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 },
  ];
  const m = decodeMessage(new Encoder().encode(q2, { rcode: 0, authoritative: true, recursion: false, answers: rrs, authority: [], additional: [] }, 512))!;
  t.is(m.answers[0]!.data, 'web.front.tsoverlay');
  t.deepEqual(m.answers[1]!.data, ['a=b', 'c']);
  t.like(m.answers[2]!.data as object, { mname: 'ns.tsoverlay', minimum: 5 });
});
