// Fuzz: DNS over TCP framing on a real listener (test/dns/fuzz.test.ts already sends 100k
// packets through the responder and UDP; this covers the stream side): several length-prefixed
// messages per connection with wrong, zero and huge length prefixes, mutated messages and random
// chunking, then a half-close. Properties: every reply frame is a whole, well-formed response;
// never more replies than messages the stream holds; every intact query for a local name is
// answered; the server keeps serving.
import test from 'ava';
import { connect } from 'node:net';
import { T } from '../../dns/constants.js';
import { decodeMessage } from '../../dns/message.js';
import { OpenScopes } from '../../dns/scope.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, indexWith, tcpAsk } from '../dns/helpers.js';
import { mutateBytes, type Rng } from './gen.js';
import { fuzz, settings, violated } from './runner.js';

const FILE = 'test/fuzz/dns-tcp.test.ts';
const NAMES = ['web', 'web.front.tsoverlay', 'www', 'api', '_http._tcp.api.tsoverlay', '2.0.1.10.in-addr.arpa', 'nosuch.tsoverlay', 'é.tsoverlay', `${'a'.repeat(63)}.tsoverlay`];

interface StreamCase {
  /** The bytes sent, in the chunks they are written in. */
  chunks: Buffer[];
  /** Queries sent intact and correctly framed, before any broken frame. */
  intact: Buffer[];
}

function frame(msg: Buffer, len = msg.length): Buffer {
  const f = Buffer.alloc(2);
  f.writeUInt16BE(len & 0xffff, 0);
  return Buffer.concat([f, msg]);
}

function generate(rng: Rng): StreamCase {
  const parts: Buffer[] = [];
  const intact: Buffer[] = [];
  let aligned = true;
  for (let n = rng.range(1, 5); n > 0; n--) {
    const q = buildQuery(rng.pick(NAMES), rng.pick([T.A, T.AAAA, T.SRV, T.PTR, T.ANY, T.TXT]), rng.chance(0.3) ? { edns: 4096 } : {});
    q.writeUInt16BE(rng.int(65536), 0);
    const r = rng.next();
    if (r < 0.6) {
      parts.push(frame(q));
      if (aligned) intact.push(q);
    } else if (r < 0.75) {
      parts.push(frame(mutateBytes(rng, q)));
    } else if (r < 0.85) {
      parts.push(frame(q, q.length + rng.pick([-3, -1, 1, 7, 300])));
      aligned = false;
    } else if (r < 0.9) {
      parts.push(frame(Buffer.alloc(0)));
    } else if (r < 0.95) {
      parts.push(frame(Buffer.alloc(rng.pick([1, 11, 12, 600, 4000]), rng.int(256))));
    } else {
      parts.push(Buffer.from([0xff, 0xff, ...q.subarray(0, rng.int(q.length))]));
      aligned = false;
    }
  }
  const all = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const size = rng.chance(0.5) ? all.length - at : rng.range(1, 40);
    chunks.push(all.subarray(at, at + size));
    at += size;
  }
  return { chunks, intact };
}

/** The messages a reader framing `bytes` by their length prefixes finds (what the server sees). */
function framed(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let b = bytes;
  while (b.length >= 2 && b.length >= 2 + b.readUInt16BE(0)) {
    out.push(b.subarray(2, 2 + b.readUInt16BE(0)));
    b = b.subarray(2 + b.readUInt16BE(0));
  }
  return out;
}

function exchange(port: number, chunks: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('the server did not close the connection within 5 s of our half-close'));
    }, 5000);
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setImmediate(r));
      }
      sock.end();
    });
  });
}

test('fuzz: DNS over TCP framing on a real listener', async (t) => {
  const index = indexWith({
    networks: [{ id: 'na', name: 'front', subnets: ['10.1.0.0/24'] }],
    endpoints: [{ id: 'e1', networkId: 'na', name: 'web', aliases: ['www'], addresses: ['10.1.0.2/24'] }],
    services: [{ name: 'api', vip: '10.96.0.1', ports: [{ port: 80, protocol: 'tcp', name: 'http' }], backends: ['10.1.0.2'] }],
  });
  const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [] });
  await server.start();
  t.teardown(() => server.stop());
  const { port } = server.addresses()[0]!;
  await fuzz(t, settings(600), {
    name: 'dns-tcp',
    file: FILE,
    generate,
    describe: (c) => JSON.stringify({ chunks: c.chunks.map((b) => b.toString('hex')), intact: c.intact.length }),
    async check(c) {
      const reply = await exchange(port, c.chunks);
      const frames = framed(reply);
      if (frames.reduce((n, f) => n + 2 + f.length, 0) !== reply.length) violated(`reply stream ends in a partial frame: ${reply.toString('hex')}`);
      const sent = framed(Buffer.concat(c.chunks));
      if (frames.length > sent.length) violated(`${frames.length} replies to ${sent.length} messages`);
      const ids = new Set(sent.filter((m) => m.length >= 2).map((m) => m.readUInt16BE(0)));
      for (const f of frames) {
        const m = decodeMessage(f);
        if (!m || !(m.flags & 0x8000)) violated(`reply does not decode as a response: ${f.toString('hex')}`);
        if (!ids.has(m.id)) violated(`reply with an ID nobody sent: ${m.id}`);
      }
      const answered = new Set(frames.map((f) => f.readUInt16BE(0)));
      for (const q of c.intact) if (!answered.has(q.readUInt16BE(0))) violated(`intact query ${q.toString('hex')} got no answer`);
      return `${sent.length} sent, ${frames.length} answered`;
    },
  });
  const ok = await tcpAsk('127.0.0.1', port, [buildQuery('web', T.A)]);
  t.deepEqual(decodeMessage(ok[0]!)!.answers.map((a) => a.data), ['10.1.0.2']);
});
