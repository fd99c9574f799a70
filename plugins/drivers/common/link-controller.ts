// Links (`tsoverlay link add`, keys.link) applied to a firewall from the store: the daemon
// follows them (start), a standalone CNI executable reads them once (load) so its reconcile keeps
// them. Limit: a link is applied only on the host whose firewall holds its network.
import { ProxyError } from '../../../proxy/errors.js';
import type { Firewall } from '../../../proxy/firewall.js';
import { StoreFollower, type FollowedPrefix } from '../../../store/follower.js';
import { keys, parseKey, type Store } from '../../../store/index.js';
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
export class LinkController extends StoreFollower {
  private readonly links = new Map<string, LinkRecord>();
  /** Endpoints by network id, then by key. */
  private readonly endpoints = new Map<string, Map<string, EndpointRecord>>();
  /** Links (by key) whose rules are in the firewall now. */
  private readonly applied = new Map<string, LinkRecord>();

  constructor(private readonly opts: LinkControllerOptions) {
    super(opts.store, (err) => opts.onError?.(err, 'watch gap: restart the daemon to re-read links'));
  }

  protected prefixes(): FollowedPrefix[] {
    // Endpoints first: a link's first application finds its ends.
    const endpointChanged = (networkId: string | undefined) => {
      if (networkId === undefined) return;
      for (const [key, l] of this.links) if (l.networkId === networkId) this.dirty.add(key);
    };
    return [
      { prefix: keys.endpoints(), put: (k, v) => endpointChanged(this.putEndpoint(k, v)), delete: (k) => endpointChanged(this.deleteEndpoint(k)) },
      {
        prefix: keys.links(),
        put: (k, v) => this.putLink(k, v),
        delete: (k) => {
          this.links.delete(k);
          this.dirty.add(k);
        },
      },
    ];
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

  /** Withdraw what was applied under a key (idempotent). */
  private async withdraw(key: string): Promise<void> {
    const prev = this.applied.get(key);
    if (!prev) return;
    this.applied.delete(key);
    await this.opts.firewall.removeLink(prev.networkId, prev.from, prev.to);
  }

  protected async syncOne(key: string): Promise<void> {
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
