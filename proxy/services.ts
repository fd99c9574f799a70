// Service VIPs kept current from the store: each service record selects its backends among the
// endpoint records by name or by labels; any change to either re-syncs the affected services.
// Limits: endpoints are matched on this host's view of the store; a record that fails
// validation is reported through onError and skipped, the others go on.
import { StoreFollower, type FollowedPrefix } from '../store/follower.js';
import { keys, lastSegment, type Store } from '../store/index.js';
import type { Firewall } from './firewall.js';
import type { ServiceSpec } from './specs.js';
import { familyOf, ip as checkIp } from './validate.js';

/** The value stored at keys.service(name). */
export interface ServiceRecord {
  /** Optional; must equal the key's name when present. */
  name: string;
  /** The virtual IP (allocated from an IPAM pool by whoever created the service). */
  vip: string;
  ports: ServiceSpec['ports'];
  /** Backends: endpoints whose name (or alias) is listed, or whose labels include all of these. */
  selector: { endpoints?: string[]; labels?: Record<string, string> };
  affinitySeconds?: number;
}

/** What a service needs to know of an endpoint record. */
export interface EndpointView {
  key: string;
  names: string[];
  labels: Record<string, string>;
  addresses: string[];
}

const bare = (a: unknown): string | undefined => {
  if (typeof a !== 'string') return undefined;
  try {
    return checkIp(a.split('/')[0], 'address').addr;
  } catch {
    return undefined;
  }
};

/**
 * Read an endpoint record tolerantly: `name`, `aliases`/`names` (string lists), `labels`
 * (string map), and addresses from `ipv4`, `ipv6`, `address`, `ip` (IP or CIDR) or `addresses` (list).
 */
export function endpointView(key: string, value: string): EndpointView | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  const names = [...(typeof o.name === 'string' ? [o.name] : []), ...strings(o.aliases), ...strings(o.names)];
  const labels: Record<string, string> = {};
  if (o.labels && typeof o.labels === 'object') {
    for (const [k, v] of Object.entries(o.labels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const raw = [o.ipv4, o.ipv6, o.address, o.ip, ...(Array.isArray(o.addresses) ? o.addresses : [])];
  const addresses = [...new Set(raw.map(bare).filter((a): a is string => a !== undefined))];
  return { key, names, labels, addresses };
}

/** The backend addresses a service selects (of the VIP's family), sorted. */
export function selectBackends(svc: ServiceRecord, endpoints: Iterable<EndpointView>): string[] {
  const fam = familyOf(svc.vip);
  const wantNames = new Set(svc.selector?.endpoints ?? []);
  const wantLabels = Object.entries(svc.selector?.labels ?? {});
  const out = new Set<string>();
  for (const ep of endpoints) {
    const byName = ep.names.some((n) => wantNames.has(n));
    const byLabel = wantLabels.length > 0 && wantLabels.every(([k, v]) => ep.labels[k] === v);
    if (!byName && !byLabel) continue;
    for (const a of ep.addresses) if (familyOf(a) === fam) out.add(a);
  }
  return [...out].sort();
}

export interface ServiceControllerOptions {
  store: Store;
  firewall: Firewall;
  onError?: (err: unknown, what: string) => void;
}

/** Watches services and endpoints in the store and keeps the firewall's VIPs current. */
export class ServiceController extends StoreFollower {
  private readonly services = new Map<string, ServiceRecord>();
  private readonly endpoints = new Map<string, EndpointView>();
  /** What was last applied per service (JSON of the spec), to skip no-op updates. */
  private readonly applied = new Map<string, string>();

  constructor(private readonly opts: ServiceControllerOptions) {
    super(opts.store, (err) => opts.onError?.(err, 'watch gap: restart the controller'));
  }

  private report(err: unknown, what: string): void {
    this.opts.onError?.(err, what);
  }

  protected prefixes(): FollowedPrefix[] {
    // Any endpoint may match a selector: every service is looked at again.
    const endpointChanged = () => {
      for (const name of this.services.keys()) this.dirty.add(name);
    };
    return [
      { prefix: keys.services(), put: (k, v) => this.putService(k, v), delete: (k) => this.deleteService(k) },
      {
        prefix: keys.endpoints(),
        put: (k, v) => {
          this.putEndpoint(k, v);
          endpointChanged();
        },
        delete: (k) => {
          this.endpoints.delete(k);
          endpointChanged();
        },
      },
    ];
  }

  private putService(key: string, value: string): void {
    try {
      const name = lastSegment(key);
      const rec = JSON.parse(value) as ServiceRecord;
      if (typeof rec !== 'object' || rec === null) throw new Error('not an object');
      if (rec.name !== undefined && rec.name !== name) throw new Error(`its name ${JSON.stringify(rec.name)} is not its key's`);
      this.services.set(name, { ...rec, name });
      this.dirty.add(name);
    } catch (err) {
      this.report(err, `service record ${key}`);
    }
  }

  private deleteService(key: string): void {
    const name = lastSegment(key);
    this.services.delete(name);
    this.dirty.add(name);
  }

  private putEndpoint(key: string, value: string): void {
    const view = endpointView(key, value);
    if (view) this.endpoints.set(key, view);
    else this.endpoints.delete(key);
  }

  protected async syncOne(name: string): Promise<void> {
    const rec = this.services.get(name);
    try {
      if (!rec) {
        if (this.applied.delete(name)) await this.opts.firewall.removeService(name);
        return;
      }
      const spec: ServiceSpec = { name, vip: rec.vip, ports: rec.ports, backends: selectBackends(rec, this.endpoints.values()), affinitySeconds: rec.affinitySeconds };
      const text = JSON.stringify(spec);
      if (this.applied.get(name) === text) return;
      await this.opts.firewall.setService(spec);
      this.applied.set(name, text);
    } catch (err) {
      this.report(err, `service ${name}`);
    }
  }
}
