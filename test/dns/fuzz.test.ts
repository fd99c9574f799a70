// Fuzz: seeded random and mutated packets through the responder (and a share of them over a
// real UDP socket). Never a throw, every reply well formed, never larger than the query allows,
// error replies never larger than the query. Count: DNS_FUZZ_N (default 100000, ~1.5 s here),
// seed: DNS_FUZZ_SEED (default 8).
import test from 'ava';
import { RCODE, T } from '../../dns/constants.js';
import { decodeMessage, parseQuery } from '../../dns/message.js';
import { OpenScopes } from '../../dns/scope.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, indexWith, udpAsk } from './helpers.js';

const N = Number(process.env.DNS_FUZZ_N ?? 100_000);
const SEED = Number(process.env.DNS_FUZZ_SEED ?? 8);

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(): Buffer[] {
  const names = ['web', 'WWW', 'web.front.tsoverlay', 'many', '_http._tcp.api.tsoverlay', '2.0.1.10.in-addr.arpa', 'api', 'tsoverlay', 'x.example.test', ''];
  const types = [T.A, T.AAAA, T.SRV, T.PTR, T.ANY, T.TXT, T.SOA, T.AXFR, T.OPT, 0, 65535];
  const out: Buffer[] = [];
  for (const n of names) for (const ty of types) {
    out.push(buildQuery(n, ty));
    out.push(buildQuery(n, ty, { edns: 4096, dnssecOk: true }));
  }
  // A query whose additional record uses a compression pointer back into the question.
  const q = buildQuery('web.front.tsoverlay', T.A);
  q.writeUInt16BE(1, 10);
  out.push(Buffer.concat([q, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4])]));
  return out;
}

function mutate(base: Buffer, rnd: () => number): Buffer {
  let b = Buffer.from(base);
  const n = 1 + Math.floor(rnd() * 4);
  const at = () => Math.floor(rnd() * Math.max(1, b.length));
  for (let i = 0; i < n; i++) {
    switch (Math.floor(rnd() * 8)) {
      case 0:
        if (b.length) b[at()] = Math.floor(rnd() * 256);
        break;
      case 1:
        if (b.length) b[at()]! ^= 1 << Math.floor(rnd() * 8);
        break;
      case 2:
        b = b.subarray(0, at());
        break;
      case 3:
        b = Buffer.concat([b, Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)))]);
        break;
      case 4: {
        // A compression pointer somewhere, often a loop or a forward jump.
        const p = at();
        if (p + 1 < b.length) {
          b[p] = 0xc0 | Math.floor(rnd() * 4);
          b[p + 1] = Math.floor(rnd() * 256);
        }
        break;
      }
      case 5:
        if (b.length >= 12) b.writeUInt16BE(Math.floor(rnd() * 65536), 4 + 2 * Math.floor(rnd() * 4));
        break;
      case 6:
        if (b.length >= 4) b[2] = Math.floor(rnd() * 256) & 0x7f;
        break;
      default:
        b = Buffer.concat([b, b.subarray(12)]);
    }
  }
  return b.length > 65535 ? b.subarray(0, 65535) : b;
}

function packet(rnd: () => number, seeds: Buffer[]): Buffer {
  if (rnd() < 0.25) return Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256)));
  return mutate(seeds[Math.floor(rnd() * seeds.length)]!, rnd);
}

const records = {
  networks: [{ id: 'na', name: 'front', subnets: ['10.1.0.0/24'] }],
  endpoints: [
    { id: 'e1', networkId: 'na', name: 'web', aliases: ['www'], addresses: ['10.1.0.2/24', 'fd01::2/64'] },
    ...Array.from({ length: 80 }, (_, i) => ({ id: `m${i}`, networkId: 'na', name: `m${i}`, aliases: ['many'], addresses: [`10.1.1.${i}/16`, `fd01::1:${i}/64`] })),
  ],
  services: [{ name: 'api', vip: '10.96.0.1', ports: [{ port: 80, protocol: 'tcp', name: 'http' }], backends: ['10.1.0.2', '10.1.0.3'] }],
};

test(`fuzz: ${N} random and mutated packets (seed ${SEED})`, async (t) => {
  const index = indexWith(records);
  const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [] });
  await server.start();
  t.teardown(() => server.stop());
  const rnd = prng(SEED);
  const seeds = corpus();
  const counts = new Map<number, number>();
  let dropped = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const pkt = packet(rnd, seeds);
    const tcp = i % 5 === 0;
    let out: Buffer | undefined;
    try {
      out = await server.responder.respond(pkt, { address: '127.0.0.1', local: '127.0.0.1', tcp });
    } catch (err) {
      t.fail(`threw on ${pkt.toString('hex')}: ${(err as Error).stack}`);
      return;
    }
    if (!out) {
      dropped++;
      continue;
    }
    const m = decodeMessage(out);
    const fail = (why: string) => t.fail(`${why}\nquery ${pkt.toString('hex')}\nreply ${out!.toString('hex')}`);
    if (!m) return fail('reply does not decode');
    if (m.id !== pkt.readUInt16BE(0) || !(m.flags & 0x8000)) return fail('bad ID or QR');
    const q = parseQuery(pkt);
    const limit = tcp ? 65535 : q?.edns ? Math.min(q.edns.udpSize, 1232) : 512;
    if (out.length > limit) return fail(`reply of ${out.length} > ${limit}`);
    if ((m.rcode === RCODE.FORMERR || m.rcode === RCODE.NOTIMP || m.rcode === RCODE.REFUSED) && out.length > pkt.length) {
      return fail(`error reply (${m.rcode}) larger than the query`);
    }
    counts.set(m.rcode, (counts.get(m.rcode) ?? 0) + 1);
  }
  const ms = performance.now() - t0;
  t.log(`${N} packets in ${ms.toFixed(0)} ms; dropped ${dropped}; rcodes ${JSON.stringify(Object.fromEntries(counts))}`);
  t.true((counts.get(RCODE.FORMERR) ?? 0) > 0 && (counts.get(RCODE.NOERROR) ?? 0) > 0);

  // A share over a real socket: the server keeps answering.
  const { host, port } = server.addresses()[0]!;
  const sock = (await import('node:dgram')).createSocket('udp4');
  for (let i = 0; i < 2000; i++) sock.send(packet(rnd, seeds), port, host);
  await new Promise((r) => setTimeout(r, 200));
  sock.close();
  // The burst may have filled the socket buffer: allow a few tries for the check.
  let ok: Buffer | undefined;
  for (let i = 0; i < 5 && !ok; i++) ok = await udpAsk(host, port, buildQuery('web', T.A), { timeoutMs: 1000 });
  t.truthy(ok, 'the server still answers');
  t.deepEqual(decodeMessage(ok!)!.answers.map((a) => a.data), ['10.1.0.2']);
});
