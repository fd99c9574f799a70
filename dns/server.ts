// The DNS server: UDP and TCP listeners on given addresses, one Responder over the handler
// chain (endpoints → services → SkyDNS → zone → forwarder). Listeners can be changed while
// running (the per-host daemon follows its networks' gateways); addresses not yet on the host
// are retried until they appear.
import { isIP } from 'node:net';
import { soaRecord, BackendHandler, ForwardHandler, ZoneHandler, type Handler } from './handlers.js';
import { EndpointBackend } from './endpoint-backend.js';
import { DnsError } from './errors.js';
import { Forwarder } from './forwarder.js';
import { nameKey } from './name.js';
import { Responder } from './responder.js';
import type { RecordIndex } from './record-index.js';
import type { ScopeResolver } from './scope.js';
import { ServiceBackend } from './service-backend.js';
import { SkydnsBackend } from './skydns-backend.js';
import type { DnsLog } from './store-sync.js';
import { createTcpServer, type TcpLimits, type TcpListener } from './tcp.js';
import { ResolvConfWatcher, type Upstream } from './upstreams.js';
import { parseAddress } from './address.js';
import { listenUdp, type UdpListener, type UdpMode } from './udp-listener.js';

/** An address to serve on (UDP and TCP); port 0 picks a free port (tests). */
export interface ListenAddress {
  host: string;
  port: number;
}

/** TTLs in seconds. */
export interface TtlOptions {
  /** Endpoint names and their PTR (default 5: containers come and go). */
  names?: number;
  /** Services (default 30). */
  services?: number;
  /** SkyDNS records without a ttl (default 300). */
  skydns?: number;
  /** NXDOMAIN/NODATA, via the SOA minimum (default 5). */
  negative?: number;
}

export interface DnsServerOptions {
  index: RecordIndex;
  scopes: ScopeResolver;
  listen: ListenAddress[];
  /** Our domain (default "tsoverlay."). */
  domain?: string;
  /** Fixed upstreams (at most 3 used); default: the nameservers of resolvConf, followed as it changes. */
  upstreams?: Upstream[];
  resolvConf?: string;
  resolvConfPollMs?: number;
  ttl?: TtlOptions;
  /** Answer SkyDNS records from the index (standalone mode). */
  skydns?: boolean;
  /** Per-upstream timeout (default 1500 ms). */
  forwardTimeoutMs?: number;
  maxUdpSize?: number;
  tcp?: TcpLimits;
  /** Keep retrying addresses that cannot be bound yet instead of failing start() (default false). */
  retryBind?: boolean;
  bindRetryMs?: number;
  /** UDP path: the batched native addon when built (auto, default), only it, or node:dgram; default from $TSOVERLAY_DNS_UDP. */
  udp?: UdpMode;
  log?: DnsLog;
}

interface Listener {
  host: string;
  port: number;
  udp: UdpListener;
  tcp: TcpListener;
}

const id = (l: ListenAddress) => `${l.host}|${l.port}`;

/** The domain option as a key; throws DnsError invalid-domain. */
export function domainKey(domain: string | undefined): string {
  const k = nameKey(domain ?? 'tsoverlay.');
  if (!k) throw new DnsError('invalid-domain', `DNS domain "${domain}" is not a valid domain name`);
  return k;
}

/** A running DNS service over a RecordIndex. */
export class DnsServer {
  readonly responder: Responder;
  private readonly listeners = new Map<string, Listener>();
  private wanted: ListenAddress[] = [];
  private readonly forwarder: Forwarder;
  private readonly resolv?: ResolvConfWatcher;
  private readonly fixedUpstreams?: Upstream[];
  private listenVersion = 0;
  private binding: Promise<void> = Promise.resolve();
  private readonly bindFailures = new Set<string>();
  private memo: { list?: Upstream[]; listeners: number; result: Upstream[] } = { listeners: -1, result: [] };
  private retryTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: DnsServerOptions) {
    for (const l of opts.listen) checkListen(l);
    const domain = domainKey(opts.domain);
    const ttl = opts.ttl ?? {};
    const zone = { domain, soa: soaRecord(domain, ttl.negative ?? 5) };
    this.fixedUpstreams = opts.upstreams?.map((u) => ({ host: parseAddress(u.host)?.ip ?? u.host, port: u.port }));
    if (!opts.upstreams) this.resolv = new ResolvConfWatcher(opts.resolvConf ?? '/etc/resolv.conf', { intervalMs: opts.resolvConfPollMs });
    this.forwarder = new Forwarder({ upstreams: () => this.upstreams(), timeoutMs: opts.forwardTimeoutMs, log: opts.log });
    const handlers: Handler[] = [
      new BackendHandler(new EndpointBackend(opts.index, { domain, ttl: ttl.names ?? 5 }), zone),
      new BackendHandler(new ServiceBackend(opts.index, { domain, ttl: ttl.services ?? 30 }), zone),
    ];
    if (opts.skydns) handlers.push(new BackendHandler(new SkydnsBackend(opts.index, { ttl: ttl.skydns ?? 300 }), zone));
    handlers.push(new ZoneHandler(opts.index, zone), new ForwardHandler(this.forwarder));
    this.responder = new Responder({ index: opts.index, scopes: opts.scopes, handlers, maxUdpSize: opts.maxUdpSize, log: opts.log });
  }

  /** The upstreams in use: configured or from resolv.conf, minus our own listeners (no loops). */
  upstreams(): Upstream[] {
    const list = this.fixedUpstreams ?? this.resolv?.current() ?? [];
    if (list === this.memo.list && this.listenVersion === this.memo.listeners) return this.memo.result;
    const self = (u: Upstream) =>
      [...this.listeners.values()].some((l) => l.port === u.port && (parseAddress(l.host)?.ip === u.host || l.host === '0.0.0.0' || l.host === '::'));
    this.memo = { list, listeners: this.listenVersion, result: list.filter((u) => !self(u)).slice(0, 3) };
    return this.memo.result;
  }

  /** Bind every listen address; rejects with DnsError listen-failed (unless retryBind). */
  async start(): Promise<void> {
    await this.setListen(this.opts.listen);
  }

  /** Serve exactly these addresses from now on. */
  async setListen(list: ListenAddress[]): Promise<void> {
    for (const l of list) checkListen(l);
    this.wanted = list.map((l) => ({ ...l }));
    const keep = new Set(this.wanted.map(id));
    for (const [k, l] of [...this.listeners]) {
      if (!keep.has(k)) {
        this.listeners.delete(k);
        this.listenVersion++;
        await closeListener(l);
      }
    }
    await this.bindMissing(!this.opts.retryBind);
  }

  /** The bound addresses (actual ports). */
  addresses(): ListenAddress[] {
    return [...this.listeners.values()].map((l) => ({ host: l.host, port: l.port }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.resolv?.close();
    this.forwarder.close();
    const ls = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(ls.map(closeListener));
  }

  /** Bind wanted addresses not bound yet; runs one at a time (retries and setListen interleave). */
  private bindMissing(strict: boolean): Promise<void> {
    const run = this.binding.then(() => this.bindMissingNow(strict));
    this.binding = run.catch(() => undefined);
    return run;
  }

  private async bindMissingNow(strict: boolean): Promise<void> {
    let missing = false;
    for (const want of this.wanted) {
      const k = id(want);
      if (this.listeners.has(k) || this.stopped) continue;
      try {
        const l = await this.bind(want);
        if (this.stopped || !this.wanted.some((w) => id(w) === k)) {
          await closeListener(l);
          continue;
        }
        this.listeners.set(k, l);
        this.listenVersion++;
        this.bindFailures.delete(k);
      } catch (err) {
        if (strict) throw err;
        missing = true;
        // Logged once per address until it binds (a gateway may take a while to appear).
        if (!this.bindFailures.has(k)) this.opts.log?.('dns: cannot listen yet, will retry', { listen: k, error: (err as Error).message });
        this.bindFailures.add(k);
      }
    }
    clearTimeout(this.retryTimer);
    if (missing && !this.stopped) {
      this.retryTimer = setTimeout(() => void this.bindMissing(false), this.opts.bindRetryMs ?? 1000);
      this.retryTimer.unref();
    }
  }

  private async bind(want: ListenAddress): Promise<Listener> {
    // With port 0, UDP picks the port and TCP must get the same one: retry a few times on a clash.
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(want);
      const port = udp.port;
      try {
        const tcp = createTcpServer(this.responder, want.host, this.opts.tcp);
        await listenTcp(tcp, want.host, port);
        return { host: want.host, port, udp, tcp };
      } catch (err) {
        udp.close();
        if (want.port !== 0 || attempt >= 5) throw listenError(want, err);
      }
    }
  }

  private async bindUdp(want: ListenAddress): Promise<UdpListener> {
    try {
      return await listenUdp({ ...want, responder: this.responder, mode: this.opts.udp, stopped: () => this.stopped, log: this.opts.log });
    } catch (err) {
      throw listenError(want, err);
    }
  }

  /** Which UDP path each listener uses ("native" or "dgram"). */
  udpKinds(): string[] {
    return [...this.listeners.values()].map((l) => l.udp.kind);
  }
}

function checkListen(l: ListenAddress): void {
  if (!l || isIP(l.host) === 0 || !Number.isInteger(l.port) || l.port < 0 || l.port > 65535) {
    throw new DnsError('invalid-listen', `listen address ${JSON.stringify(l)} is not {host: IP, port: 0..65535}`);
  }
}

function listenError(want: ListenAddress, err: unknown): DnsError {
  const code = (err as NodeJS.ErrnoException).code;
  return new DnsError('listen-failed', `cannot listen on ${want.host}:${want.port}: ${(err as Error).message}`, {
    cause: err,
    retryable: code === 'EADDRNOTAVAIL' || code === 'EADDRINUSE',
  });
}

function listenTcp(tcp: TcpListener, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    tcp.server.once('error', reject);
    tcp.server.listen({ host, port }, () => {
      tcp.server.removeListener('error', reject);
      resolve();
    });
  });
}

async function closeListener(l: Listener): Promise<void> {
  l.udp.close();
  await l.tcp.close();
}
