// Links (`tsoverlay link add`, keys.link) applied to a firewall from the store: the daemon
// follows them (start), a standalone CNI executable reads them once (load) so its reconcile keeps
// them. Limit: a link is applied only on the host whose firewall holds its network.
import { ProxyError } from '../../../proxy/errors.js';
import type { Firewall } from '../../../proxy/firewall.js';
import { keys, parseKey, type Store, type Watcher } from '../../../store/index.js';
import { decodeLinkRecord, findEndpoint, linkAddresses, linkPorts, type LinkRecord } from './link-records.js';
import { decodeEndpointRecord, type EndpointRecord } from './records.js';

export interface LinkControllerOptions {
  store: Store;
  firewall: Pick<Firewall, 'setLink' | 'removeLink'>;
  /** A record or an application that failed (the others go on). */
  onError?: (err: unknown, what: string) => void;
  /** A link that is not applied here, and why (its network is not on this host, an end is missing). */
  onWaiting?: (link: string, why: string) => void;
}

/** Follows links and endpoints in the store and keeps the firewall's link rules current. */
export class LinkController {
  private readonly links = new Map<string, LinkRecord>();
  /** Endpoints by network id, then by key. */
  private readonly endpoints = new Map<string, Map<string, EndpointRecord>>();
  /** Links (by key) whose rules are in the firewall now. */
  private readonly applied = new Map<string, LinkRecord>();
  private readonly dirty = new Set<string>();
  private watchers: Watcher[] = [];
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LinkControllerOptions) {}

  /** Load links and endpoints and apply them, once; resolves with the revision to follow from. */
  async load(): Promise<number> {
    const { store } = this.opts;
    const links = await store.range(keys.links());
    const eps = await store.range(keys.endpoints());
    for (const kv of eps.kvs) this.putEndpoint(kv.key, kv.value);
    for (const kv of links.kvs) this.putLink(kv.key, kv.value);
    await this.flush();
    return Math.max(links.revision, eps.revision) + 1;
  }

  /** Load links and endpoints, apply, then follow changes. Resolves once applied. */
  async start(): Promise<void> {
    const { store } = this.opts;
    const from = await this.load();
    const gap = (err: Error) => this.opts.onError?.(err, 'watch gap: restart the daemon to re-read links');
    this.watchers.push(
      await store.watch(keys.links(), (ev) => {
        if (ev.type === 'put') this.putLink(ev.key, ev.value);
        else {
          this.links.delete(ev.key);
          this.dirty.add(ev.key);
        }
        void this.flush();
      }, { fromRevision: from, onGap: gap }),
      await store.watch(keys.endpoints(), (ev) => {
        const networkId = ev.type === 'put' ? this.putEndpoint(ev.key, ev.value) : this.deleteEndpoint(ev.key);
        if (networkId === undefined) return;
        for (const [key, l] of this.links) if (l.networkId === networkId) this.dirty.add(key);
        void this.flush();
      }, { fromRevision: from, onGap: gap }),
    );
  }

  /** Stop following the store (the firewall keeps its rules). */
  async stop(): Promise<void> {
    await Promise.all(this.watchers.splice(0).map((w) => w.cancel()));
    await this.flushing;
  }

  /** Resolves when every change seen so far has been applied. */
  idle(): Promise<void> {
    return this.flushing;
  }

  private putLink(key: string, value: string): void {
    const rec = decodeLinkRecord(value);
    if (rec) this.links.set(key, rec);
    else {
      this.links.delete(key);
      this.opts.onError?.(new Error('not a link record'), `link record ${key}`);
    }
    this.dirty.add(key);
  }

  /** The network id of an endpoint key (endpoints/<network>/<id>). */
  private networkOf(key: string): string | undefined {
    const parts = parseKey(key);
    return parts.length === 3 ? parts[1] : undefined;
  }

  private putEndpoint(key: string, value: string): string | undefined {
    const networkId = this.networkOf(key);
    if (networkId === undefined) return undefined;
    let map = this.endpoints.get(networkId);
    if (!map) this.endpoints.set(networkId, (map = new Map()));
    try {
      map.set(key, decodeEndpointRecord(value, key));
    } catch {
      map.delete(key);
    }
    return networkId;
  }

  private deleteEndpoint(key: string): string | undefined {
    const networkId = this.networkOf(key);
    if (networkId !== undefined) this.endpoints.get(networkId)?.delete(key);
    return networkId;
  }

  private flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const todo = [...this.dirty];
      this.dirty.clear();
      for (const key of todo) await this.syncOne(key);
    });
    return this.flushing;
  }

  /** Withdraw what was applied under a key (idempotent). */
  private async withdraw(key: string): Promise<void> {
    const prev = this.applied.get(key);
    if (!prev) return;
    this.applied.delete(key);
    await this.opts.firewall.removeLink(prev.networkId, prev.from, prev.to);
  }

  private async syncOne(key: string): Promise<void> {
    const rec = this.links.get(key);
    try {
      const prev = this.applied.get(key);
      // A changed record may name other ends: the old rules go first.
      if (!rec || (prev && (prev.from !== rec.from || prev.to !== rec.to || prev.networkId !== rec.networkId))) await this.withdraw(key);
      if (!rec) return;
      const eps = [...(this.endpoints.get(rec.networkId)?.values() ?? [])];
      const from = findEndpoint(eps, rec.from);
      const to = findEndpoint(eps, rec.to);
      const addrs = from && to ? linkAddresses(from, to) : undefined;
      const ports = to ? linkPorts(rec, to) : [];
      const why = !from ? `no endpoint "${rec.from}"` : !to ? `no endpoint "${rec.to}"` : !addrs ? 'no addresses of one family' : ports.length === 0 ? 'no ports' : undefined;
      if (why || !addrs) {
        await this.withdraw(key);
        this.opts.onWaiting?.(key, why ?? 'unresolved');
        return;
      }
      await this.opts.firewall.setLink({ networkId: rec.networkId, fromEndpoint: rec.from, toEndpoint: rec.to, ...addrs, ports });
      this.applied.set(key, rec);
    } catch (err) {
      // Another host's network: nothing to do here (its daemon applies the link).
      if (err instanceof ProxyError && err.code === 'unknown-network') {
        this.applied.delete(key);
        this.opts.onWaiting?.(key, 'its network is not on this host');
        return;
      }
      this.opts.onError?.(err, `link ${key}`);
    }
  }
}
