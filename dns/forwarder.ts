// Forwarding to upstream resolvers. Each attempt uses a fresh socket (a new random source port)
// and a random ID; a reply is accepted only from the upstream's address and port, with that ID
// and the same question (spoofing resistance, RFC 5452). Upstreams are tried in turn with a
// timeout each; one that timed out stops being tried first.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import { parseAddress } from './address.js';
import { F, HEADER_SIZE, RCODE } from './constants.js';
import type { Question } from './message.js';
import { readName } from './name.js';
import type { DnsLog } from './store-sync.js';
import { MAX_UPSTREAMS, type Upstream } from './upstreams.js';

export interface ForwarderOptions {
  /** The upstreams in order of preference (read at each query; at most 3 are used). */
  upstreams: () => Upstream[];
  /** Wait this long for each upstream (default 1500 ms). */
  timeoutMs?: number;
  /** Queries forwarded at once; past this, queries fail at once (default 1000). */
  maxInFlight?: number;
  log?: DnsLog;
}

/** True when reply answers our query: QR set, our ID, one question equal to ours. */
export function replyMatches(reply: Buffer, id: number, q: Question): boolean {
  if (reply.length < HEADER_SIZE || reply.readUInt16BE(0) !== id || !(reply.readUInt16BE(2) & F.QR)) return false;
  if (reply.readUInt16BE(4) !== 1) return false;
  const n = readName(reply, HEADER_SIZE);
  if (!n || n.end + 4 > reply.length) return false;
  return n.key === q.name && reply.readUInt16BE(n.end) === q.type && reply.readUInt16BE(n.end + 2) === q.cls;
}

/** Sends queries upstream, over UDP or TCP like the client asked. */
export class Forwarder {
  private inFlight = 0;
  private preferred = 0;
  private closed = false;
  private readonly open = new Set<{ abort: () => void }>();

  constructor(private readonly opts: ForwarderOptions) {}

  /** The upstream's reply (our ID still in it), or undefined when none answered usefully. */
  async forward(query: Buffer, q: Question, tcp: boolean): Promise<Buffer | undefined> {
    const ups = this.opts.upstreams().slice(0, MAX_UPSTREAMS);
    if (ups.length === 0 || this.closed || this.inFlight >= (this.opts.maxInFlight ?? 1000)) return undefined;
    this.inFlight++;
    try {
      let last: Buffer | undefined;
      const first = this.preferred % ups.length;
      for (let i = 0; i < ups.length && !this.closed; i++) {
        const idx = (first + i) % ups.length;
        const up = ups[idx]!;
        const reply = await this.attempt(up, query, q, tcp);
        if (!reply) {
          if (this.preferred % ups.length === idx) this.preferred = idx + 1;
          this.opts.log?.('dns: upstream did not answer', { upstream: `${up.host}:${up.port}`, name: q.name });
          continue;
        }
        const rcode = reply[3]! & 0xf;
        if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
          last = reply;
          continue;
        }
        return reply;
      }
      return last;
    } finally {
      this.inFlight--;
    }
  }

  /** Abort every pending attempt. */
  close(): void {
    this.closed = true;
    for (const o of [...this.open]) o.abort();
  }

  private attempt(up: Upstream, query: Buffer, q: Question, tcp: boolean): Promise<Buffer | undefined> {
    const id = randomInt(0, 0x10000);
    const msg = Buffer.from(query);
    msg.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      let finished = false;
      const handle = { abort: () => finish(undefined) };
      const cleanup: (() => void)[] = [];
      const finish = (r: Buffer | undefined) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.open.delete(handle);
        for (const c of cleanup) c();
        resolve(r);
      };
      const timer = setTimeout(() => finish(undefined), this.opts.timeoutMs ?? 1500);
      this.open.add(handle);
      const accept = (reply: Buffer) => {
        if (replyMatches(reply, id, q)) finish(reply);
      };
      if (tcp) cleanup.push(this.sendTcp(up, msg, accept, () => finish(undefined)));
      else cleanup.push(this.sendUdp(up, msg, accept, () => finish(undefined)));
    });
  }

  private sendUdp(up: Upstream, msg: Buffer, accept: (b: Buffer) => void, fail: () => void): () => void {
    const family = isIP(up.host) === 6 ? 6 : 4;
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    const want = parseAddress(up.host)?.ip;
    sock.on('message', (m, rinfo) => {
      if (rinfo.port === up.port && parseAddress(rinfo.address)?.ip === want) accept(m);
    });
    sock.on('error', fail);
    // An unbound socket gets a random ephemeral port from the kernel at its first send.
    sock.send(msg, up.port, up.host, (err) => err && fail());
    return () => {
      try {
        sock.close();
      } catch {
        /* already closed */
      }
    };
  }

  private sendTcp(up: Upstream, msg: Buffer, accept: (b: Buffer) => void, fail: () => void): () => void {
    const sock: Socket = connect({ host: up.host, port: up.port });
    let buf: Buffer = Buffer.alloc(0);
    const frame = Buffer.allocUnsafe(2);
    frame.writeUInt16BE(msg.length, 0);
    sock.on('connect', () => sock.write(Buffer.concat([frame, msg])));
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        accept(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
      }
      if (buf.length > 70_000) fail();
    });
    sock.on('error', fail);
    sock.on('close', fail);
    return () => sock.destroy();
  }
}
