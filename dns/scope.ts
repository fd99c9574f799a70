// Who is asking: the query's source address (and the address it was sent to) decide which
// networks' names a client sees and whether it may recurse. Internal networks never forward
// (CVE-2024-29018): a client recurses only when one of its networks is not internal.
import { cidrContains } from './address.js';
import type { Scope } from './backend.js';
import type { EndpointView } from './records.js';
import type { RecordIndex } from './record-index.js';

/** Maps a client to its scope; undefined = not our client (refused). */
export interface ScopeResolver {
  /** `client` and `local` are canonical addresses (see address.clientIp). */
  resolve(client: string, local: string): Scope | undefined;
}

/** Caches resolutions until the index changes. */
abstract class CachedScopes implements ScopeResolver {
  /** local address → client address → scope (null: not a client). */
  private cache = new Map<string, Map<string, Scope | null>>();
  private size = 0;
  private gen = -1;

  constructor(protected readonly index: RecordIndex) {}

  resolve(client: string, local: string): Scope | undefined {
    if (this.gen !== this.index.generation || this.size > 100_000) {
      this.cache.clear();
      this.size = 0;
      this.gen = this.index.generation;
    }
    let byClient = this.cache.get(local);
    if (!byClient) this.cache.set(local, (byClient = new Map()));
    let s = byClient.get(client);
    if (s === undefined) {
      s = this.compute(client, local) ?? null;
      byClient.set(client, s);
      this.size++;
    }
    return s ?? undefined;
  }

  protected abstract compute(client: string, local: string): Scope | undefined;

  /** Networks of the container(s) behind these endpoints, and whether any is not internal. */
  protected expand(eps: EndpointView[]): { networks: Set<string>; forward: boolean } {
    const networks = new Set<string>();
    for (const ep of eps) {
      networks.add(ep.networkId);
      if (!ep.containerId) continue;
      for (const peer of this.index.byContainer.get(`${ep.hostId ?? ''}\0${ep.containerId}`) ?? []) networks.add(peer.networkId);
    }
    const forward = [...networks].some((id) => this.index.networks.get(id)?.internal !== true);
    return { networks, forward };
  }
}

export interface EndpointScopesOptions {
  /** Only endpoints of this host are clients (the per-host daemon); undefined = any host. */
  hostId?: string;
}

/**
 * Per-host mode: a client is an endpoint whose address is the query's source. When the query
 * reached a network's gateway, endpoints of that network win (overlapping subnets).
 */
export class EndpointScopes extends CachedScopes {
  constructor(
    index: RecordIndex,
    private readonly opts: EndpointScopesOptions = {},
  ) {
    super(index);
  }

  protected compute(client: string, local: string): Scope | undefined {
    const all = [...(this.index.byAddress.get(client) ?? [])].filter(
      (ep) => this.opts.hostId === undefined || ep.hostId === undefined || ep.hostId === this.opts.hostId,
    );
    if (all.length === 0) return undefined;
    const viaGateway = all.filter((ep) => this.index.networks.get(ep.networkId)?.gateways.some((g) => g.ip === local));
    const { networks, forward } = this.expand(viaGateway.length ? viaGateway : all);
    return { key: `${[...networks].sort().join(',')}|${forward ? 'f' : 'n'}`, networks, forward };
  }
}

export interface OpenScopesOptions {
  /** Clients in these CIDRs may recurse (besides loopback and our networks' members). */
  recursionFrom?: string[];
}

/**
 * Standalone mode: everyone sees every record; recursion only for loopback, the configured
 * CIDRs, and addresses on our non-internal networks (never an open resolver).
 */
export class OpenScopes extends CachedScopes {
  private static readonly ALL_FORWARD: Scope = { key: '*|f', forward: true };
  private static readonly ALL_LOCAL: Scope = { key: '*|n', forward: false };

  constructor(
    index: RecordIndex,
    private readonly opts: OpenScopesOptions = {},
  ) {
    super(index);
  }

  protected compute(client: string): Scope {
    return this.mayRecurse(client) ? OpenScopes.ALL_FORWARD : OpenScopes.ALL_LOCAL;
  }

  private mayRecurse(client: string): boolean {
    const eps = [...(this.index.byAddress.get(client) ?? [])];
    if (eps.length) return this.expand(eps).forward;
    if (client === '::1' || client.startsWith('127.')) return true;
    if ((this.opts.recursionFrom ?? []).some((c) => cidrContains(c, client))) return true;
    for (const net of this.index.networks.values()) {
      if (!net.internal && net.subnets.some((c) => cidrContains(c, client))) return true;
    }
    return false;
  }
}
