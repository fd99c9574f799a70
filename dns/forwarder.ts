// Forwarding to upstream resolvers (at most 3), each tried in turn with a timeout; one that timed
// out stops being tried first. UDP queries leave through a pool of random-port sockets with
// random IDs (udp-pool.ts); TCP queries (from TCP clients) use a connection each. A reply is
// accepted only from the upstream's address and port, with our ID and the same question.
import { randomInt } from 'node:crypto';
import { connect, isIP, type Socket } from 'node:net';
import { RCODE } from './constants.js';
import { replyMatches, type Question } from './message.js';
import type { DnsLog } from './store-sync.js';
import { UdpPool, type UdpPoolOptions } from './udp-pool.js';
import { MAX_UPSTREAMS, type Upstream } from './upstreams.js';

export interface ForwarderOptions {
  /** The upstreams in order of preference (read at each query; at most 3 are used). */
  upstreams: () => Upstream[];
  /** Wait this long for each upstream (default 1500 ms). */
  timeoutMs?: number;
  /** Queries forwarded at once; past this, queries fail at once (default 1000). */
  maxInFlight?: number;
  pool?: UdpPoolOptions;
  log?: DnsLog;
}

/** Sends queries upstream, over UDP or TCP like the client asked. */
export class Forwarder {
  private inFlight = 0;
  private preferred = 0;
  private closed = false;
  private readonly open = new Set<() => void>();
  private readonly pool: UdpPool;

  constructor(private readonly opts: ForwarderOptions) {
    this.pool = new UdpPool(opts.pool);
  }

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

  /** Abort every pending attempt and close the sockets. */
  close(): void {
    this.closed = true;
    for (const abort of [...this.open]) abort();
    this.pool.close();
  }

  private attempt(up: Upstream, query: Buffer, q: Question, tcp: boolean): Promise<Buffer | undefined> {
    const msg = Buffer.from(query);
    return new Promise((resolve) => {
      let finished = false;
      let cancel = () => {};
      const finish = (r: Buffer | undefined) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.open.delete(abort);
        cancel();
        resolve(r);
      };
      const abort = () => finish(undefined);
      const timer = setTimeout(abort, this.opts.timeoutMs ?? 1500);
      this.open.add(abort);
      if (tcp) cancel = this.sendTcp(up, msg, q, finish);
      else cancel = this.pool.send(up, isIP(up.host) === 6 ? 6 : 4, msg, q, finish);
    });
  }

  private sendTcp(up: Upstream, msg: Buffer, q: Question, finish: (r: Buffer | undefined) => void): () => void {
    const id = randomInt(0x10000);
    msg.writeUInt16BE(id, 0);
    const sock: Socket = connect({ host: up.host, port: up.port });
    let buf: Buffer = Buffer.alloc(0);
    const frame = Buffer.allocUnsafe(2);
    frame.writeUInt16BE(msg.length, 0);
    sock.on('connect', () => sock.write(Buffer.concat([frame, msg])));
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const reply = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        if (replyMatches(reply, id, q)) return finish(Buffer.from(reply));
      }
      if (buf.length > 70_000) finish(undefined);
    });
    sock.on('error', () => finish(undefined));
    sock.on('close', () => finish(undefined));
    return () => sock.destroy();
  }
}
