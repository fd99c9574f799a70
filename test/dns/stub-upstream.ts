// A small upstream resolver for tests (UDP + TCP on one address): answers A queries for names
// under example.test with one address (NXDOMAIN for others), or misbehaves on purpose (silent, wrong ID, wrong question, oversized).
import dgram from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { parseAddress } from '../../dns/address.js';
import { T } from '../../dns/constants.js';
import { Encoder, type RR } from '../../dns/encode.js';
import { parseQuery } from '../../dns/message.js';

/** 'big': 100 A records within the client's size; 'huge': 100 A records whatever the size. */
export type StubMode = 'ok' | 'silent' | 'wrong-id' | 'wrong-question' | 'wrong-source' | 'big' | 'huge';

export interface StubUpstream {
  port: number;
  /** Queries received (UDP and TCP). */
  readonly received: { name: string; tcp: boolean; from: string; ednsSize?: number }[];
  setMode(m: StubMode): void;
  close(): Promise<void>;
}

/** Start the stub on host:port (0 = any, retried when TCP cannot get UDP's port); answers `answer` (default 192.0.2.53) to A queries. */
export async function startStubUpstream(host: string, port = 0, opts: { mode?: StubMode; answer?: string } = {}): Promise<StubUpstream> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOnce(host, port, opts);
    } catch (err) {
      if (port !== 0 || attempt > 5) throw err;
    }
  }
}

async function startOnce(host: string, port = 0, opts: { mode?: StubMode; answer?: string } = {}): Promise<StubUpstream> {
  let mode: StubMode = opts.mode ?? 'ok';
  const received: StubUpstream['received'] = [];
  const enc = new Encoder();
  const addr = parseAddress(opts.answer ?? '192.0.2.53')!;
  const reply = (msg: Buffer, tcp: boolean, from: string): Buffer | undefined => {
    const q = parseQuery(msg);
    if (!q?.question) return undefined;
    received.push({ name: q.question.name, tcp, from, ednsSize: q.edns?.udpSize });
    if (mode === 'silent') return undefined;
    // Only names under example.test exist upstream; everything else is NXDOMAIN.
    const known = q.question.name === 'example.test' || q.question.name.endsWith('.example.test');
    const many = mode === 'big' || mode === 'huge';
    const n = !known ? 0 : many ? 100 : q.question.type === T.A ? 1 : 0;
    const answers: RR[] = Array.from({ length: n }, (_, i) => ({ name: q.question!.name, type: T.A, ttl: 60, addr: many ? Buffer.from([192, 0, 2, i]) : addr.bytes }));
    const id = mode === 'wrong-id' ? (q.id + 1) & 0xffff : q.id;
    const question = mode === 'wrong-question' ? { ...q.question, name: 'other.example', wire: Buffer.from([5, 111, 116, 104, 101, 114, 7, 101, 120, 97, 109, 112, 108, 101, 0]) } : q.question;
    return enc.encode({ id, flags: q.flags, question, edns: q.edns }, { rcode: known ? 0 : 3, authoritative: false, recursion: true, answers, authority: [], additional: [] }, tcp || mode === 'huge' ? 65535 : (q.edns?.udpSize ?? 512));
  };
  const udp = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  // 'wrong-source' answers correctly but from another port: a spoofer's reply.
  const other = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', (m, r) => {
    const out = reply(m, false, r.address);
    if (out) (mode === 'wrong-source' ? other : udp).send(out, r.port, r.address);
  });
  await new Promise<void>((res) => udp.bind(port, host, () => res()));
  await new Promise<void>((res) => other.bind(0, host, () => res()));
  const actual = udp.address().port;
  const socks = new Set<import('node:net').Socket>();
  const tcp: Server = createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), true, sock.remoteAddress ?? '');
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (out) {
          const f = Buffer.alloc(2);
          f.writeUInt16BE(out.length, 0);
          sock.write(Buffer.concat([f, out]));
        }
      }
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((res, rej) => {
    tcp.once('error', (err) => {
      udp.close();
      other.close();
      rej(err);
    });
    tcp.listen(actual, host, () => res());
  });
  return {
    port: actual,
    received,
    setMode: (m) => (mode = m),
    close: async () => {
      udp.close();
      other.close();
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}
