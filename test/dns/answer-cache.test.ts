// The answer cache (hot path): a cached reply is byte-equal to what the full handler chain would
// send right now — after every index change, for the client's ID and name case, per size limit
// (TC/EDNS/TCP), per qtype/class/flags and per scope — and a real UDP listener serves it.
import test from 'ava';
import { C, F, RCODE, T } from '../../dns/constants.js';
import { decodeMessage } from '../../dns/message.js';
import type { RecordIndex } from '../../dns/record-index.js';
import type { Client } from '../../dns/responder.js';
import { EndpointScopes, OpenScopes, type ScopeResolver } from '../../dns/scope.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, indexWith, udpAsk, type QueryOptions } from './helpers.js';
import { startStubUpstream } from './stub-upstream.js';

const nets = [
  { id: 'na', name: 'front', subnets: ['10.1.0.0/24'], gateways: ['10.1.0.1'] },
  { id: 'nb', name: 'back', subnets: ['10.2.0.0/24'], gateways: ['10.2.0.1'] },
];
const ep = (id: string, networkId: string, name: string, addresses: string[], extra: Record<string, unknown> = {}) => ({ id, networkId, hostId: 'h1', name, addresses, ...extra });

/** A server whose cache is warmed by asking, and a reference that answers every query uncached. */
function pair(t: { teardown: (f: () => Promise<void>) => void }, index: RecordIndex, scopes: ScopeResolver) {
  const server = new DnsServer({ index, scopes, listen: [], upstreams: [] });
  t.teardown(() => server.stop());
  const raw = async (msg: Buffer, client: Client) => (await server.responder.respond(msg, client))!;
  const reference = async (msg: Buffer, client: Client) => {
    const ref = new DnsServer({ index, scopes, listen: [], upstreams: [] });
    try {
      return (await ref.responder.respondUncached(msg, client))!;
    } finally {
      await ref.stop();
    }
  };
  return { server, raw, reference };
}

/** A reply with its answers in a fixed order (round-robin rotates them between queries). */
const norm = (b: Buffer) => {
  const m = decodeMessage(b)!;
  return { ...m, answers: m.answers.map((a) => JSON.stringify(a)).sort() };
};

const udpFrom = (address: string, local = '10.1.0.1'): Client => ({ address, local, tcp: false });

test('never stale: after each of 300 random index changes every name answers as the full chain would', async (t) => {
  const index = indexWith({ networks: nets, endpoints: [ep('c', 'na', 'client', ['10.1.0.2/24'])] });
  const { raw, reference, server } = pair(t, index, new EndpointScopes(index, { hostId: 'h1' }));
  let seed = 7;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const names = ['a', 'b', 'c2', 'd'];
  const questions = names.flatMap((n) => [`${n}`, `${n}.front.tsoverlay`, `${n}.back.tsoverlay`]);
  const client = udpFrom('10.1.0.2');
  let hits = 0;
  for (let step = 0; step < 300; step++) {
    // Warm the cache with the current answers, then change one record.
    for (const q of questions) await raw(buildQuery(q, T.A), client);
    const n = names[rnd(names.length)]!;
    const net = rnd(2) ? 'na' : 'nb';
    const kind = rnd(4);
    if (kind === 0) index.apply('endpoint', `${net}\0${n}`, undefined);
    else if (kind === 1) index.apply('endpoint', `${net}\0${n}`, JSON.stringify(ep(n, net, n, [`10.${net === 'na' ? 1 : 2}.0.${10 + rnd(200)}/24`])));
    else if (kind === 2) index.apply('endpoint', `${net}\0${n}`, JSON.stringify(ep(n, net, `${n}x`, [`10.${net === 'na' ? 1 : 2}.0.${10 + rnd(200)}/24`])));
    // The client joins or leaves network b (its scope changes).
    else index.apply('endpoint', 'nb\0c', rnd(2) ? JSON.stringify(ep('c', 'nb', 'client', ['10.2.0.2/24'], { containerId: 'k' })) : undefined);
    if (kind !== 3 && rnd(2)) index.apply('endpoint', 'na\0c', JSON.stringify(ep('c', 'na', 'client', ['10.1.0.2/24'], rnd(2) ? { containerId: 'k' } : {})));
    for (const q of questions) {
      for (const type of [T.A, T.AAAA]) {
        const msg = buildQuery(q, type, { id: step });
        const first = await raw(msg, client);
        t.deepEqual(norm(first), norm(await reference(msg, client)), `step ${step}: ${q} type ${type} right after the change`);
        const second = await raw(msg, client);
        t.deepEqual(norm(second), norm(first), `step ${step}: ${q} from the cache`);
        if (decodeMessage(first)!.answers.length <= 1) t.deepEqual(second, first, 'byte-equal without round-robin');
        const hit = server.responder.cachedReply(msg, client.address, client.local, false);
        if (hit) {
          t.deepEqual(norm(hit), norm(first));
          hits++;
        }
      }
    }
  }
  t.true(hits > 300 * 16 * 0.9, `served from the cache: ${hits}`);
});

test('the client\'s ID and name case come back, byte-equal to an uncached reply; OPT options (cookies) hit too', async (t) => {
  const index = indexWith({ networks: nets, endpoints: [ep('w', 'na', 'web', ['10.1.0.5/24'])] });
  const { raw, reference, server } = pair(t, index, new OpenScopes(index));
  const client = udpFrom('127.0.0.1');
  await raw(buildQuery('web.front.tsoverlay', T.A, { id: 1 }), client);
  t.truthy(server.responder.cachedReply(buildQuery('WEB.FRONT.tsoverlay', T.A), '127.0.0.1', '10.1.0.1', false), 'other case: a hit');
  for (const [name, id] of [['WEB.Front.TSOVERLAY', 0xbeef], ['wEb.fRoNt.tsoverlay', 2], ['web.front.tsoverlay', 0]] as const) {
    const msg = buildQuery(name, T.A, { id });
    const out = await raw(msg, client);
    t.deepEqual(out, await reference(msg, client), name);
    t.is(out.readUInt16BE(0), id);
    t.deepEqual(out.subarray(12, msg.length), msg.subarray(12), 'question echoed as asked');
    t.deepEqual(decodeMessage(out)!.answers.map((a) => a.data), ['10.1.0.5']);
  }
  // dig's query: EDNS with a COOKIE option; the reply (no cookie) is the same as without options.
  const cookie = buildQuery('Web.front.tsoverlay', T.A, { id: 9, edns: 1232 });
  const withOpt = Buffer.concat([cookie, Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])]);
  withOpt.writeUInt16BE(12, withOpt.length - 14);
  const a = await raw(withOpt, client);
  const b = await raw(withOpt, client);
  t.deepEqual(a, await reference(withOpt, client));
  t.deepEqual(b, a);
});

test('size limits: TC at 512 or the EDNS size, never the bigger cached entry; TCP full; DO echoed', async (t) => {
  const many = Array.from({ length: 60 }, (_, i) => `10.1.1.${i + 2}/16`);
  const index = indexWith({ networks: [{ ...nets[0], subnets: ['10.1.0.0/16'] }], endpoints: [ep('m', 'na', 'many', many)] });
  const { raw, reference } = pair(t, index, new OpenScopes(index));
  const client = udpFrom('127.0.0.1');
  const ask = async (o: QueryOptions, tcp = false) => {
    const msg = buildQuery('many', T.A, { id: 3, ...o });
    const c = { ...client, tcp };
    const first = await raw(msg, c);
    const second = await raw(msg, c);
    // Round-robin: each rotation has its own variant, so compare shapes, not answer order.
    t.is(second.length, first.length);
    t.is(second.readUInt16BE(2), first.readUInt16BE(2));
    const m = decodeMessage(second)!;
    return { len: second.length, tc: (m.flags & F.TC) !== 0, n: m.answers.length, opt: m.additional.find((r) => r.type === T.OPT), ref: await reference(msg, c) };
  };
  const order = [{}, { edns: 4096 }, {}, { edns: 600 }, { edns: 4096, dnssecOk: true }, {}, { edns: 512 }];
  for (const o of order) {
    const r = await ask(o);
    const cap = o.edns === undefined ? 512 : Math.min(o.edns, 1232);
    t.true(r.len <= cap, `${JSON.stringify(o)}: ${r.len} ≤ ${cap}`);
    // Header 12 + question 10 + 60 compressed A records of 16 bytes (+ OPT 11).
    t.is(r.tc, 982 + (o.edns === undefined ? 0 : 11) > cap, `${JSON.stringify(o)}: TC only when 60 answers do not fit`);
    t.is(r.opt === undefined, o.edns === undefined, 'OPT only for EDNS queries');
    if (r.opt) t.is((r.opt.ttl & 0x8000) !== 0, 'dnssecOk' in o, 'DO echoed');
    t.is(r.len, r.ref.length);
  }
  const tcp = await ask({}, true);
  t.false(tcp.tc);
  t.is(tcp.n, 60);
  t.true((await ask({})).tc, 'UDP after TCP is still truncated');
});

test('qtypes, classes, flags, scopes and look-alike names never share an entry', async (t) => {
  const index = indexWith({
    networks: nets,
    endpoints: [ep('a1', 'na', 'app', ['10.1.0.7/24', 'fd01::7/64']), ep('a2', 'nb', 'app', ['10.2.0.7/24']), ep('c1', 'na', 'c1', ['10.1.0.2/24']), ep('c2', 'nb', 'c2', ['10.2.0.2/24'])],
  });
  const { raw, reference } = pair(t, index, new EndpointScopes(index, { hostId: 'h1' }));
  const cases: [string, number, QueryOptions, Client][] = [];
  const fromA = udpFrom('10.1.0.2');
  const fromB = udpFrom('10.2.0.2', '10.2.0.1');
  for (const c of [fromA, fromB]) {
    for (const type of [T.A, T.AAAA, T.ANY, 0x41, 0x61, T.TXT]) {
      for (const o of [{}, { rd: false }, { cls: C.ANY }, { edns: 1232 }]) cases.push(['app', type, o, c]);
    }
    // '[' (0x5b) and '{' (0x7b) differ only in the bit case folding sets: different names.
    cases.push(['x[.tsoverlay', T.A, {}, c], ['x{.tsoverlay', T.A, {}, c], ['app.front.tsoverlay', T.A, {}, c], ['app.back.tsoverlay', T.A, {}, c]);
  }
  // Twice round: the second pass is served from the cache, in another order than it was filled.
  for (const pass of [0, 1]) {
    for (const [name, type, o, c] of pass ? [...cases].reverse() : cases) {
      const msg = buildQuery(name, type, { id: 77, ...o });
      const out = await raw(msg, c);
      t.deepEqual(out, await reference(msg, c), `pass ${pass}: ${name} type ${type} ${JSON.stringify(o)} from ${c.address}`);
    }
  }
  const a = decodeMessage(await raw(buildQuery('app', T.A), fromA))!;
  const b = decodeMessage(await raw(buildQuery('app', T.A), fromB))!;
  t.deepEqual(a.answers.map((r) => r.data), ['10.1.0.7']);
  t.deepEqual(b.answers.map((r) => r.data), ['10.2.0.7']);
  t.is(decodeMessage(await raw(buildQuery('x[.tsoverlay', T.A), fromA))!.rcode, RCODE.NXDOMAIN);
});

test('a UDP listener serves cached replies with the right ID and follows a change at once', async (t) => {
  const index = indexWith({ networks: nets, endpoints: [ep('w', 'na', 'web', ['10.1.0.5/24'])] });
  const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [] });
  t.teardown(() => server.stop());
  await server.start();
  const { port } = server.addresses()[0]!;
  const ask = async (id: number) => decodeMessage((await udpAsk('127.0.0.1', port, buildQuery('WEB', T.A, { id })))!)!;
  for (let id = 1; id <= 5; id++) {
    const m = await ask(id);
    t.is(m.id, id);
    t.deepEqual(m.answers.map((a) => a.data), ['10.1.0.5']);
  }
  index.apply('endpoint', 'na\0w', JSON.stringify(ep('w', 'na', 'web', ['10.1.0.6/24'])));
  t.deepEqual((await ask(6)).answers.map((a) => a.data), ['10.1.0.6']);
  index.apply('endpoint', 'na\0w', undefined);
  t.is((await ask(7)).rcode, RCODE.SERVFAIL, 'gone: not ours any more, and no upstream here');
});

test('a forwarded name skips the backends only until the index changes: a new record answers at once', async (t) => {
  const up = await startStubUpstream('127.0.0.1', 0);
  t.teardown(() => up.close());
  const index = indexWith({ networks: nets, endpoints: [] });
  const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [], upstreams: [{ host: '127.0.0.1', port: up.port }] });
  t.teardown(() => server.stop());
  const client = udpFrom('127.0.0.1');
  const ask = async (name: string, id: number) => decodeMessage((await server.responder.respond(buildQuery(name, T.A, { id }), client))!)!;
  for (let id = 1; id <= 3; id++) {
    const m = await ask('Newcomer', id);
    t.is(m.id, id);
    t.is(m.rcode, RCODE.NXDOMAIN, 'upstream does not know it');
  }
  t.is(up.received.length, 3, 'forwarded answers are not cached');
  index.apply('endpoint', 'na\0n', JSON.stringify(ep('n', 'na', 'newcomer', ['10.1.0.9/24'])));
  const m = await ask('newcomer', 4);
  t.deepEqual(m.answers.map((a) => a.data), ['10.1.0.9'], 'ours right after the change');
  t.is(up.received.length, 3);
  index.apply('endpoint', 'na\0n', undefined);
  t.is((await ask('NEWCOMER', 5)).rcode, RCODE.NXDOMAIN, 'upstream again once it is gone');
  t.is(up.received.length, 4);
});
