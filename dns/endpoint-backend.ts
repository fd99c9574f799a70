// Endpoint names: `<name>` and `<name>.<network>.<domain>` for every name of every endpoint on
// the client's networks (A/AAAA), and PTR for every endpoint address to `<primary>.<network>.<domain>`.
import type { Addr } from './address.js';
import { emptySet, type RecordBackend, type RecordSet, type Scope } from './backend.js';
import { isSubdomain } from './name.js';
import type { EndpointView } from './records.js';
import type { RecordIndex } from './record-index.js';

export interface EndpointBackendOptions {
  /** Our domain as a key ("tsoverlay"). */
  domain: string;
  ttl: number;
}

const visible = (scope: Scope, networkId: string) => scope.networks === undefined || scope.networks.has(networkId);

/** Looks endpoint names and addresses up in the index. */
export class EndpointBackend implements RecordBackend {
  readonly name = 'endpoints';

  constructor(
    private readonly index: RecordIndex,
    private readonly opts: EndpointBackendOptions,
  ) {}

  lookup(scope: Scope, name: string): RecordSet | undefined {
    const rev = this.index.byReverse.get(name);
    if (rev) return this.reverse(scope, rev);
    const { domain } = this.opts;
    if (domain !== '' && isSubdomain(name, domain)) {
      if (name === domain) return undefined;
      return this.qualified(scope, name.slice(0, name.length - domain.length - 1));
    }
    return this.relative(scope, name);
  }

  /** `<host>.<network>` (the domain already stripped); network labels may hold dots. */
  private qualified(scope: Scope, rest: string): RecordSet | undefined {
    let found: EndpointView[] | undefined;
    for (let i = rest.indexOf('.'); i > 0; i = rest.indexOf('.', i + 1)) {
      const host = rest.slice(0, i);
      for (const net of this.networksLabelled(rest.slice(i + 1))) {
        if (!visible(scope, net)) continue;
        const eps = this.index.names.get(net)?.get(host);
        if (eps) (found ??= []).push(...eps);
      }
    }
    return found && this.addresses(found);
  }

  private networksLabelled(label: string): string[] {
    const ids = [...(this.index.byLabel.get(label) ?? [])];
    // Endpoints whose network has no record yet are reachable under the network id.
    if (this.index.names.has(label) && !this.index.networks.has(label)) ids.push(label);
    return ids;
  }

  private relative(scope: Scope, name: string): RecordSet | undefined {
    let found: EndpointView[] | undefined;
    const nets = scope.networks ?? this.index.names.keys();
    for (const net of nets) {
      const eps = this.index.names.get(net)?.get(name);
      if (eps) (found ??= []).push(...eps);
    }
    return found && this.addresses(found);
  }

  private addresses(eps: EndpointView[]): RecordSet {
    const set = emptySet(this.opts.ttl);
    const seen = new Set<string>();
    const add = (a: Addr) => {
      if (!seen.has(a.ip)) {
        seen.add(a.ip);
        set.addrs.push(a);
      }
    };
    // A stable base order (by endpoint id) so round-robin rotates the same list each time.
    for (const ep of [...eps].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) ep.addrs.forEach(add);
    return set;
  }

  private reverse(scope: Scope, eps: Set<EndpointView>): RecordSet | undefined {
    const set = emptySet(this.opts.ttl);
    for (const ep of eps) {
      if (!visible(scope, ep.networkId) || ep.names.length === 0) continue;
      const fqdn = [ep.names[0], this.index.networkLabel(ep.networkId), this.opts.domain].filter((s) => s).join('.');
      if (!set.ptr.includes(fqdn)) set.ptr.push(fqdn);
    }
    return set.ptr.length ? set : undefined;
  }
}
