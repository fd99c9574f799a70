// Forwarding to upstream resolvers (at most 3), each tried in turn with a timeout (one timer for
// all queries, deadlines.ts); one that timed out stops being tried first. UDP queries leave through a pool of random-port sockets with
// random IDs (udp-pool.ts); TCP queries (from TCP clients) use a connection each. A reply is
// accepted only from the upstream's address and port, with our ID and the same question.
import { randomInt } from 'node:crypto';
import { connect, isIP, type Socket } from 'node:net';
import { RCODE } from './constants.js';
import { replyMatches, type Question } from './message.js';
import type { DnsLog } from './store-sync.js';
import { DeadlineQueue, type Expiring } from './deadlines.js';
import { UdpPool, type UdpPoolOptions, type UdpTicket, type UdpWaiter } from './udp-pool.js';
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

/** One forwarded query: which upstream it is on, the current attempt (token) and its wait. */
class Job implements Expiring, UdpWaiter {
  /** Bumped per attempt; stale timeouts and replies carry an older one. */
  token = 0;
  /** Attempts made so far. */
  tried = 0;
  /** A SERVFAIL/REFUSED answer kept in case nobody does better. */
  last: Buffer | undefined;
  ticket: UdpTicket | undefined;
  cancelTcp: (() => void) | undefined;
  done = false;

  constructor(
    readonly fw: Forwarder,
    readonly msg: Buffer,
    readonly q: Question,
    readonly tcp: boolean,
    readonly ups: Upstream[],
    readonly first: number,
    readonly resolve: (reply: Buffer | undefined) => void,
  ) {}

  expire(token: number): void {
    if (token === this.token && !this.done) this.fw.result(this, undefined, true);
  }

  onReply(reply: Buffer | undefined, token: number): void {
    if (token === this.token && !this.done) this.fw.result(this, reply, false);
  }
}

/** Sends queries upstream, over UDP or TCP like the client asked. */
export class Forwarder {
  private inFlight = 0;
  private preferred = 0;
  private closed = false;
  private readonly pool: UdpPool;
  private readonly deadlines: DeadlineQueue;

  constructor(private readonly opts: ForwarderOptions) {
    this.pool = new UdpPool(opts.pool);
    this.deadlines = new DeadlineQueue(opts.timeoutMs ?? 1500);
  }

  /** The upstream's reply (our ID still in it), or undefined when none answered usefully. */
  forward(query: Buffer, q: Question, tcp: boolean): Promise<Buffer | undefined> {
    const ups = this.opts.upstreams().slice(0, MAX_UPSTREAMS);
    if (ups.length === 0 || this.closed || this.inFlight >= (this.opts.maxInFlight ?? 1000)) return Promise.resolve(undefined);
    this.inFlight++;
    return new Promise((resolve) => this.attempt(new Job(this, Buffer.from(query), q, tcp, ups, this.preferred % ups.length, resolve)));
  }

  /** Abort every pending attempt and close the sockets. */
  close(): void {
    this.closed = true;
    this.deadlines.expireAll();
    this.pool.close();
  }

  /** The outcome of a job's current attempt: a reply, or undefined (timeout, socket failure). */
  result(job: Job, reply: Buffer | undefined, timedOut: boolean): void {
    const idx = (job.first + job.tried - 1) % job.ups.length;
    if (job.ticket) this.pool.cancel(job.ticket);
    job.cancelTcp?.();
    job.ticket = job.cancelTcp = undefined;
    if (!reply) {
      if (this.preferred % job.ups.length === idx) this.preferred = idx + 1;
      const up = job.ups[idx]!;
      this.opts.log?.('dns: upstream did not answer', { upstream: `${up.host}:${up.port}`, name: job.q.name, timedOut });
    } else {
      const rcode = reply[3]! & 0xf;
      if (rcode !== RCODE.SERVFAIL && rcode !== RCODE.REFUSED) return this.finish(job, reply);
      job.last = reply;
    }
    this.attempt(job);
  }

  /** Try the job's next upstream, or finish with the best answer so far. */
  private attempt(job: Job): void {
    if (this.closed || job.tried >= job.ups.length) return this.finish(job, job.last);
    const up = job.ups[(job.first + job.tried) % job.ups.length]!;
    job.tried++;
    const token = ++job.token;
    this.deadlines.add(job, token);
    if (job.tcp) job.cancelTcp = this.sendTcp(up, job.msg, job.q, (r) => job.onReply(r, token));
    else job.ticket = this.pool.send(up, isIP(up.host) === 6 ? 6 : 4, job.msg, job.q, job, token);
  }

  private finish(job: Job, reply: Buffer | undefined): void {
    if (job.done) return;
    job.done = true;
    job.last = undefined;
    this.inFlight--;
    job.resolve(reply);
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
