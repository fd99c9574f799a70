// `tsoverlay dns serve`: the service-discovery DNS of a whole cluster, straight from the store.
// Every client sees every network's names, services and SkyDNS records; only clients on our
// networks, loopback and `recursionFrom` may recurse (not an open resolver).
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import { DnsError } from './errors.js';
import { RecordIndex } from './record-index.js';
import { OpenScopes } from './scope.js';
import { DnsServer, domainKey, type ListenAddress, type TtlOptions } from './server.js';
import type { TcpLimits } from './tcp.js';
import type { UdpMode } from './udp-listener.js';
import { StoreSync, type DnsLog } from './store-sync.js';
import { parseUpstream, type Upstream } from './upstreams.js';

export interface StandaloneOptions {
  /** sqlite:///… or etcd://… */
  storeUrl: string;
  /** "ADDR:PORT" strings ("127.0.0.1:53", "[::1]:53") or objects. */
  listen: (string | ListenAddress)[];
  /** Default "tsoverlay.". */
  domain?: string;
  /** "IP[:PORT]" (at most 3); default: /etc/resolv.conf's nameservers, followed as it changes. */
  upstreams?: (string | Upstream)[];
  /** CIDRs whose clients may recurse besides loopback and our networks' members. */
  recursionFrom?: string[];
  ttl?: TtlOptions;
  tcp?: TcpLimits;
  /** Read SkyDNS records under /skydns/ (default true). */
  skydns?: boolean;
  resolvConf?: string;
  /** UDP path: batched native addon when built (auto), or force native / dgram; default $TSOVERLAY_DNS_UDP or auto. */
  udp?: UdpMode;
  /** More than 1: that many processes share the sockets (node:cluster); default 1, in this process. */
  workers?: number;
  log?: DnsLog;
}

/** A running standalone server. */
export interface StandaloneHandle {
  /** Bound addresses (actual ports). */
  addresses(): ListenAddress[];
  /** Stop serving and close the store. */
  stop(): Promise<void>;
}

/** Parse "ADDR:PORT", "[V6]:PORT" or a bare address (port 53); throws DnsError invalid-listen. */
export function parseListen(text: string | ListenAddress): ListenAddress {
  if (typeof text !== 'string') return text;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text) ?? [text, text, undefined];
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!Number.isInteger(port) || port > 65535) throw new DnsError('invalid-listen', `listen address "${text}" is not ADDR:PORT`);
  return { host: m[1]!, port };
}

/** Start serving; rejects with DnsError (bad options, store unreachable, address in use). */
export async function serveStandalone(opts: StandaloneOptions): Promise<StandaloneHandle> {
  if ((opts.workers ?? 1) > 1) {
    const { serveClustered } = await import('./standalone-cluster.js');
    return serveClustered(opts);
  }
  const listen = opts.listen.map(parseListen);
  if (listen.length === 0) throw new DnsError('invalid-listen', 'no listen address given');
  domainKey(opts.domain);
  const upstreams = opts.upstreams?.map((u) => (typeof u === 'string' ? parseUpstream(u) : u));
  const store: Store = await openStore(opts.storeUrl, { log: opts.log }).catch((err: Error) => {
    throw new DnsError('store-failed', err.message, { cause: err });
  });
  const index = new RecordIndex();
  const sync = new StoreSync(store, index, { skydns: opts.skydns ?? true, log: opts.log });
  let server: DnsServer | undefined;
  try {
    await sync.start();
    server = new DnsServer({
      index,
      scopes: new OpenScopes(index, { recursionFrom: opts.recursionFrom }),
      listen,
      domain: opts.domain,
      upstreams,
      resolvConf: opts.resolvConf,
      ttl: opts.ttl,
      tcp: opts.tcp,
      skydns: opts.skydns ?? true,
      udp: opts.udp,
      log: opts.log,
    });
    await server.start();
  } catch (err) {
    await server?.stop();
    await sync.stop();
    await store.close();
    throw err;
  }
  const s = server;
  return {
    addresses: () => s.addresses(),
    stop: async () => {
      await s.stop();
      await sync.stop();
      await store.close();
    },
  };
}
