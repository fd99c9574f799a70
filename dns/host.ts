// The per-host DNS the daemon runs: listens on the gateway address of every network that has an
// endpoint on this host (following the store), answers each client the names of its own
// networks, forwards the rest to the host's resolvers (none for internal networks).
import type { Store } from '../store/types.js';
import { RecordIndex } from './record-index.js';
import { EndpointScopes } from './scope.js';
import { DnsServer, type ListenAddress, type TtlOptions } from './server.js';
import { StoreSync, type DnsLog } from './store-sync.js';
import type { TcpLimits } from './tcp.js';
import type { UdpMode } from './udp-listener.js';
import type { Upstream } from './upstreams.js';

export interface HostDnsOptions {
  store: Store;
  hostId: string;
  /** Port on each gateway address (default 53). */
  port?: number;
  /** Default "tsoverlay.". */
  domain?: string;
  /** Fixed upstreams; default: resolvConf's nameservers (default /etc/resolv.conf), followed as it changes. */
  upstreams?: Upstream[];
  resolvConf?: string;
  resolvConfPollMs?: number;
  /** Addresses served besides the gateways (e.g. one Docker's containers are pointed at). */
  extraListen?: ListenAddress[];
  ttl?: TtlOptions;
  tcp?: TcpLimits;
  forwardTimeoutMs?: number;
  /** UDP path: batched native addon when built (auto), or force native / dgram; default $TSOVERLAY_DNS_UDP or auto. */
  udp?: UdpMode;
  /** Retry period for gateway addresses not yet on the host (default 1000 ms). */
  bindRetryMs?: number;
  log?: DnsLog;
}

/** Gateway addresses of the networks with at least one endpoint on hostId. */
export function gatewayAddresses(index: RecordIndex, hostId: string): string[] {
  const nets = new Set<string>();
  for (const ep of index.endpoints.values()) if (ep.hostId === hostId) nets.add(ep.networkId);
  const out = new Set<string>();
  for (const id of nets) for (const g of index.networks.get(id)?.gateways ?? []) out.add(g.ip);
  return [...out].sort();
}

/** A running per-host DNS; call stop() to release sockets and the watch. */
export class HostDns {
  private timer?: NodeJS.Timeout;
  private current = '';
  private unsubscribe?: () => void;
  private applying: Promise<void> = Promise.resolve();

  private constructor(
    private readonly opts: HostDnsOptions,
    readonly index: RecordIndex,
    private readonly sync: StoreSync,
    readonly server: DnsServer,
  ) {}

  /** Read the store, bind the current gateways, and follow changes. */
  static async start(opts: HostDnsOptions): Promise<HostDns> {
    const index = new RecordIndex();
    const sync = new StoreSync(opts.store, index, { skydns: false, log: opts.log });
    const server = new DnsServer({
      index,
      scopes: new EndpointScopes(index, { hostId: opts.hostId }),
      listen: [],
      domain: opts.domain,
      upstreams: opts.upstreams,
      resolvConf: opts.resolvConf,
      resolvConfPollMs: opts.resolvConfPollMs,
      ttl: opts.ttl,
      tcp: opts.tcp,
      forwardTimeoutMs: opts.forwardTimeoutMs,
      retryBind: true,
      bindRetryMs: opts.bindRetryMs,
      udp: opts.udp,
      log: opts.log,
    });
    const h = new HostDns(opts, index, sync, server);
    await sync.start();
    await h.reconcile();
    h.unsubscribe = index.onChange(() => h.schedule());
    return h;
  }

  /** The addresses being served (bound ones; others are retried). */
  addresses(): ListenAddress[] {
    return this.server.addresses();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.applying;
    await this.server.stop();
    await this.sync.stop();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reconcile();
    }, 20);
  }

  private reconcile(): Promise<void> {
    const port = this.opts.port ?? 53;
    const list: ListenAddress[] = [...gatewayAddresses(this.index, this.opts.hostId).map((host) => ({ host, port })), ...(this.opts.extraListen ?? [])];
    const key = JSON.stringify(list);
    if (key === this.current) return this.applying;
    this.current = key;
    this.applying = this.applying.then(() => this.server.setListen(list)).catch((err: Error) => this.opts.log?.('dns: listen update failed', { error: err.message }));
    return this.applying;
  }
}
