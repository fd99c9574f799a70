// DNS over TCP (RFC 7766): several length-prefixed messages per connection, answered as they
// complete (possibly out of order). Every connection is bounded so that one slow or idle client
// never holds the server (CVE-2024-8418): idle and per-message deadlines, a cap on queries in
// flight and on unsent output, and a cap on connections.
import { createServer, type Server, type Socket } from 'node:net';
import type { Client, Responder } from './responder.js';

export interface TcpLimits {
  /** Close a connection with no complete message for this long (default 10 s). */
  idleMs?: number;
  /** A message must arrive whole within this long of its first byte (default 3 s). */
  messageMs?: number;
  /** Queries being answered per connection before reading pauses (default 16). */
  maxPending?: number;
  /** Connections at once per listener; past it the oldest idle one is closed (default 256). */
  maxConnections?: number;
  /** Unsent reply bytes per connection before it is dropped as not reading (default 256 KiB). */
  maxUnsent?: number;
}

/** A TCP listener and a way to drop its connections. */
export interface TcpListener {
  readonly server: Server;
  /** Stop accepting, drop every connection, resolve when closed. */
  close(): Promise<void>;
}

/** A TCP listener handing complete messages to the responder (not yet listening). */
export function createTcpServer(responder: Responder, local: string, limits: TcpLimits = {}): TcpListener {
  const conns = new Set<Connection>();
  const server = createServer({ noDelay: true }, (sock) => {
    const max = limits.maxConnections ?? 256;
    if (conns.size >= max) {
      const idle = [...conns].sort((a, b) => a.lastActive - b.lastActive)[0];
      idle?.close();
    }
    const c = new Connection(sock, responder, local, limits, () => conns.delete(c));
    conns.add(c);
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of [...conns]) c.close();
      }),
  };
}

class Connection {
  lastActive = Date.now();
  private buf: Buffer = Buffer.alloc(0);
  private pending = 0;
  private partialSince = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly client: Client;

  constructor(
    private readonly sock: Socket,
    private readonly responder: Responder,
    local: string,
    private readonly limits: TcpLimits,
    private readonly onClose: () => void,
  ) {
    this.client = { address: sock.remoteAddress ?? '', local, tcp: true };
    const tick = Math.min(limits.idleMs ?? 10_000, limits.messageMs ?? 3_000, 1000);
    this.timer = setInterval(() => this.checkDeadlines(), tick);
    this.timer.unref();
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => this.close());
    sock.on('close', () => this.close());
    sock.on('drain', () => this.maybeResume());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.sock.destroy();
    this.onClose();
  }

  private checkDeadlines(): void {
    const now = Date.now();
    if (this.partialSince && now - this.partialSince > (this.limits.messageMs ?? 3_000)) return this.close();
    if (this.pending === 0 && now - this.lastActive > (this.limits.idleMs ?? 10_000)) this.close();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.process();
  }

  /** Answer the complete messages buffered, up to the pending cap. */
  private process(): void {
    const maxPending = this.limits.maxPending ?? 16;
    while (!this.closed && this.buf.length >= 2 && this.pending < maxPending) {
      const len = this.buf.readUInt16BE(0);
      if (this.buf.length < 2 + len) break;
      const msg = Buffer.from(this.buf.subarray(2, 2 + len));
      this.buf = this.buf.subarray(2 + len);
      this.lastActive = Date.now();
      this.handle(msg);
    }
    // The per-message deadline runs only while the client owes us bytes.
    const incomplete = this.buf.length > 0 && (this.buf.length < 2 || this.buf.length < 2 + this.buf.readUInt16BE(0));
    this.partialSince = incomplete ? this.partialSince || Date.now() : 0;
    this.maybePause();
  }

  private handle(msg: Buffer): void {
    const r = this.responder.respond(msg, this.client);
    if (!(r instanceof Promise)) return this.send(r);
    this.pending++;
    r.then(
      (out) => {
        this.pending--;
        this.lastActive = Date.now();
        this.send(out);
        this.maybeResume();
      },
      () => this.close(),
    );
  }

  private send(out: Buffer | undefined): void {
    if (!out || this.closed) return;
    const frame = Buffer.allocUnsafe(2 + out.length);
    frame.writeUInt16BE(out.length, 0);
    out.copy(frame, 2);
    this.sock.write(frame);
    if (this.sock.writableLength > (this.limits.maxUnsent ?? 256 * 1024)) this.close();
  }

  private maybePause(): void {
    if (this.pending >= (this.limits.maxPending ?? 16) || this.sock.writableNeedDrain) this.sock.pause();
  }

  private maybeResume(): void {
    if (this.closed || this.pending >= (this.limits.maxPending ?? 16) || this.sock.writableNeedDrain) return;
    if (this.buf.length >= 2) this.process();
    if (!this.closed && this.pending < (this.limits.maxPending ?? 16)) this.sock.resume();
  }
}
