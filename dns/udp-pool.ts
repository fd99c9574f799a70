// UDP sockets for upstream queries: a pool of sockets on random kernel-chosen ports, each
// retired after a number of queries, so each query leaves from a random one of many short-lived
// ports with a random ID (RFC 5452 source-port and ID randomisation) without paying a socket
// per query. A reply is taken only from the queried upstream's address and port, with the ID and
// the question of a pending query.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { replyMatches, type Question } from './message.js';
import type { Upstream } from './upstreams.js';

export interface UdpPoolOptions {
  /** Sockets per address family (default 16). */
  size?: number;
  /** Queries sent from one socket before it is replaced (default 64). */
  maxUses?: number;
}

/** Told the reply to a query (undefined: the socket failed), with the token given to send(). */
export interface UdpWaiter {
  onReply(reply: Buffer | undefined, token: number): void;
}

/** A query sent and not answered yet; hand it to cancel() to stop waiting. */
export interface UdpTicket {
  readonly id: number;
}

interface Pending extends UdpTicket {
  slot: Slot;
  host: string;
  port: number;
  q: Question;
  waiter: UdpWaiter;
  token: number;
}

interface Slot {
  sock: dgram.Socket;
  pending: Map<number, Pending>;
  uses: number;
  retired: boolean;
}

/** Sends queries and hands back the matching replies. */
export class UdpPool {
  private readonly slots: Record<4 | 6, (Slot | undefined)[]>;
  private closed = false;

  constructor(private readonly opts: UdpPoolOptions = {}) {
    const n = opts.size ?? 16;
    this.slots = { 4: new Array<Slot | undefined>(n), 6: new Array<Slot | undefined>(n) };
  }

  /**
   * Send `msg` (its ID is overwritten) to the upstream; `waiter.onReply(reply, token)` gets the
   * reply, or undefined when the socket fails. Returns a ticket for cancel() (on timeout), or
   * undefined when the pool is closed (the waiter has been told).
   */
  send(up: Upstream, family: 4 | 6, msg: Buffer, q: Question, waiter: UdpWaiter, token: number): UdpTicket | undefined {
    if (this.closed) {
      waiter.onReply(undefined, token);
      return undefined;
    }
    const list = this.slots[family];
    const i = randomInt(list.length);
    let slot = list[i];
    if (!slot || slot.retired) list[i] = slot = this.open(family);
    let id = randomInt(0x10000);
    while (slot.pending.has(id)) id = randomInt(0x10000);
    msg.writeUInt16BE(id, 0);
    const s = slot;
    const p: Pending = { slot: s, id, host: up.host, port: up.port, q, waiter, token };
    s.pending.set(id, p);
    if (++s.uses >= (this.opts.maxUses ?? 64)) {
      s.retired = true;
      list[i] = undefined;
    }
    s.sock.send(msg, up.port, up.host, (err) => {
      if (err) this.settle(s, id, undefined);
    });
    return p;
  }

  /** Stop waiting for a reply (the waiter is not told). */
  cancel(t: UdpTicket): void {
    const p = t as Pending;
    if (p.slot.pending.get(p.id) === p) this.settle(p.slot, p.id, undefined, false);
  }

  close(): void {
    this.closed = true;
    for (const list of [this.slots[4], this.slots[6]]) {
      for (const s of list) if (s) this.fail(s);
      list.fill(undefined);
    }
  }

  private open(family: 4 | 6): Slot {
    const sock = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      lookup: (host: string, _o: unknown, cb: (e: Error | null, a: string, f: number) => void) => cb(null, host, family),
    } as dgram.SocketOptions);
    const slot: Slot = { sock, pending: new Map(), uses: 0, retired: false };
    sock.on('message', (m, rinfo) => {
      if (m.length < 12) return;
      const id = m.readUInt16BE(0);
      const p = slot.pending.get(id);
      if (p && rinfo.port === p.port && sameHost(rinfo.address, p.host) && replyMatches(m, id, p.q)) this.settle(slot, id, m);
    });
    sock.on('error', () => this.fail(slot));
    // Port 0: the kernel picks a random ephemeral port. Exclusive: in a cluster worker, a shared
    // socket would hand replies to other workers, which do not know the query.
    sock.bind({ port: 0, exclusive: true });
    return slot;
  }

  private settle(slot: Slot, id: number, reply: Buffer | undefined, notify = true): void {
    const p = slot.pending.get(id);
    if (!p) return;
    slot.pending.delete(id);
    if (notify) p.waiter.onReply(reply, p.token);
    if (slot.retired && slot.pending.size === 0) closeQuietly(slot.sock);
  }

  private fail(slot: Slot): void {
    slot.retired = true;
    for (const id of [...slot.pending.keys()]) this.settle(slot, id, undefined);
    closeQuietly(slot.sock);
    for (const list of [this.slots[4], this.slots[6]]) {
      const i = list.indexOf(slot);
      if (i >= 0) list[i] = undefined;
    }
  }
}

/** Upstream hosts are canonical (upstreams.ts); the kernel reports canonical text too, maybe with a zone. */
function sameHost(reported: string, upstream: string): boolean {
  return reported === upstream || reported.split('%')[0] === upstream;
}

function closeQuietly(sock: dgram.Socket): void {
  try {
    sock.close();
  } catch {
    /* already closed */
  }
}
