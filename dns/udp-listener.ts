// The UDP side of a listen address: a node:dgram socket, served either by the batched native
// addon (recvmmsg/sendmmsg, one JS call per batch; see native/README.md) or by dgram's own events.
// The socket is always bound by dgram (errors, port 0 and cluster sharing as before).
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { loadUdpBatch, type UdpBatchAddon, type UdpBatchOpened } from './native-udp.js';
import type { Responder } from './responder.js';

/** Which UDP path: native when the addon loads (auto), only native, or only dgram. */
export type UdpMode = 'auto' | 'native' | 'dgram';

/** Environment variable overriding the mode (`dgram` to compare or to be safe). */
export const UDP_MODE_ENV = 'TSOVERLAY_DNS_UDP';

/** One bound UDP socket serving DNS. */
export interface UdpListener {
  readonly kind: 'native' | 'dgram';
  readonly port: number;
  close(): void;
}

export interface UdpListenOptions {
  host: string;
  port: number;
  responder: Responder;
  mode?: UdpMode;
  /** Stopped servers send no late (forwarded) replies. */
  stopped: () => boolean;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The mode from the option, else $TSOVERLAY_DNS_UDP, else auto. */
export function udpMode(opt: UdpMode | undefined, env: NodeJS.ProcessEnv = process.env): UdpMode {
  const v = opt ?? env[UDP_MODE_ENV];
  return v === 'native' || v === 'dgram' ? v : 'auto';
}

/** Bind host:port over dgram and serve it; rejects with dgram's bind error (or when native is required and missing). */
export async function listenUdp(o: UdpListenOptions): Promise<UdpListener> {
  const mode = udpMode(o.mode);
  const loaded = mode === 'dgram' ? {} : loadUdpBatch();
  if (mode === 'native' && !loaded.addon) throw new Error(`native UDP path required but unavailable: ${loaded.why}`);
  const sock = await bindDgram(o);
  if (loaded.addon) {
    const native = NativeUdp.attach(sock, loaded.addon, o);
    if (native) return native;
    if (mode === 'native') {
      sock.close();
      throw new Error('native UDP path required but the socket could not be handed to it');
    }
  }
  return { kind: 'dgram', port: sock.address().port, close: () => closeQuietly(sock) };
}

function bindDgram(o: UdpListenOptions): Promise<dgram.Socket> {
  const family = isIP(o.host) === 6 ? 6 : 4;
  const sock = dgram.createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    // Replies go to literal addresses: skip the resolver lookup dgram does per send.
    lookup: (host: string, _o: unknown, cb: (e: Error | null, a: string, f: number) => void) => cb(null, host, family),
  } as dgram.SocketOptions);
  const local = o.host;
  const r = o.responder;
  sock.on('message', (msg, rinfo) => {
    const out = r.cachedReply(msg, rinfo.address, local, false) ?? r.respondUncached(msg, { address: rinfo.address, local, tcp: false });
    if (out === undefined) return;
    if (out instanceof Promise) void out.then((b) => b && !o.stopped() && sock.send(b, rinfo.port, rinfo.address));
    else sock.send(out, rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(o.port, o.host, () => {
      sock.removeAllListeners('error');
      sock.on('error', (err) => o.log?.('dns: udp socket error', { listen: `${o.host}|${o.port}`, error: err.message }));
      resolve(sock);
    });
  });
}

function closeQuietly(sock: dgram.Socket): void {
  try {
    sock.close();
  } catch {
    /* already closed */
  }
}

/** dgram's libuv handle (Node keeps it under an internal symbol), for its fd and recvStop. */
function uvHandle(sock: dgram.Socket): { fd?: number; recvStop?: () => number; recvStart?: () => number } | undefined {
  const key = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = key ? (sock as unknown as Record<symbol, { handle?: unknown }>)[key] : undefined;
  return state?.handle as ReturnType<typeof uvHandle>;
}

/** The batched path over a dgram-bound socket: dgram stops reading, the addon drains a dup of its fd. */
class NativeUdp implements UdpListener {
  readonly kind = 'native';
  readonly port: number;
  private closed = false;
  private readonly inBuf: Buffer;
  private readonly outBuf: Buffer;
  private readonly ctrl: Buffer;
  private readonly words: Uint32Array;
  private readonly slot: number;
  private readonly peer: number;
  private readonly inAt: number;
  private readonly flagsAt: number;
  private readonly outAt: number;
  /** The last peer's address words (family, v4 or v6 + scope) and its text. */
  private readonly last = new Uint32Array(7);
  private lastText = '';
  private opened!: UdpBatchOpened;

  /** Hand the socket to the addon; undefined (dgram keeps it) when that is not possible. */
  static attach(sock: dgram.Socket, addon: UdpBatchAddon, o: UdpListenOptions): NativeUdp | undefined {
    const h = uvHandle(sock);
    if (!h || typeof h.fd !== 'number' || h.fd < 0 || typeof h.recvStop !== 'function') {
      o.log?.('dns: native UDP path unavailable (no socket handle in this Node version), using dgram', { listen: `${o.host}|${o.port}` });
      return undefined;
    }
    h.recvStop();
    try {
      return new NativeUdp(sock, addon, h.fd, o);
    } catch (err) {
      o.log?.('dns: native UDP path unavailable, using dgram', { error: (err as Error).message });
      h.recvStart?.();
      return undefined;
    }
  }

  private constructor(
    private readonly sock: dgram.Socket,
    private readonly addon: UdpBatchAddon,
    fd: number,
    private readonly o: UdpListenOptions,
  ) {
    this.port = sock.address().port;
    this.slot = addon.slot;
    this.peer = addon.peer;
    const self = this;
    this.opened = addon.open(fd, (n) => self.batch(n));
    const b = this.opened.batch;
    this.inBuf = Buffer.from(this.opened.in);
    this.outBuf = Buffer.from(this.opened.out);
    this.ctrl = Buffer.from(this.opened.ctrl);
    this.words = new Uint32Array(this.opened.ctrl);
    this.inAt = (b * this.peer) / 4;
    this.flagsAt = this.inAt + b;
    this.outAt = this.flagsAt + b;
    if (this.ctrl.length !== b * this.peer + 12 * b || this.inBuf.length !== b * this.slot) {
      addon.close(this.opened.handle);
      throw new Error('udp-batch: unexpected shared memory layout');
    }
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.addon.close(this.opened.handle);
    }
    closeQuietly(this.sock);
  }

  /** Answer n received datagrams: cached replies go into the out slots (sent together), others later one by one. */
  private batch(n: number): void {
    const r = this.o.responder;
    const local = this.o.host;
    for (let i = 0; i < n && !this.closed; i++) {
      const len = this.words[this.inAt + i]!;
      if (this.words[this.flagsAt + i] !== 0) continue; // larger than any UDP payload dgram would pass on
      const address = this.address(i);
      const query = this.inBuf.subarray(i * this.slot, i * this.slot + len);
      try {
        const hit = r.cachedReply(query, address, local, false);
        if (hit) {
          this.put(i, hit);
          continue;
        }
        // The full path may keep the query past this call (forwarding): give it its own copy.
        const out = r.respondUncached(Buffer.from(query), { address, local, tcp: false });
        if (out instanceof Promise) {
          const peer = Buffer.from(this.ctrl.subarray(i * this.peer, i * this.peer + 32));
          void out.then((b) => b && !this.closed && !this.o.stopped() && this.addon.sendTo(this.opened.handle, b, peer));
        } else if (out) this.put(i, out);
      } catch (err) {
        this.o.log?.('dns: internal error', { error: (err as Error).stack });
      }
    }
  }

  private put(i: number, reply: Buffer): void {
    if (reply.length > this.slot) return; // cannot happen: replies are capped below 64 KiB
    reply.copy(this.outBuf, i * this.slot);
    this.words[this.outAt + i] = reply.length;
  }

  /** Slot i's peer address as text, reusing the last one when the address words are equal. */
  private address(i: number): string {
    const w = this.words;
    const base = (i * this.peer) / 4;
    const last = this.last;
    const fam = w[base]! & 0xffff;
    let same = fam === last[0];
    for (let k = 1; same && k < 7; k++) same = w[base + k] === last[k];
    if (same) return this.lastText;
    last[0] = fam;
    for (let k = 1; k < 7; k++) last[k] = w[base + k]!;
    const start = i * this.peer + 32;
    const end = this.ctrl.indexOf(0, start);
    this.lastText = this.ctrl.toString('latin1', start, end < 0 || end > start + 48 ? start + 48 : end);
    return this.lastText;
  }
}
