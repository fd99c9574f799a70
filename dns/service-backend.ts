// Services: `<service>[.<domain>]` → the VIP (or every backend when there is none),
// `_<port>._<proto>.<service>[.<domain>]` → SRV per backend with target
// `<address-with-dashes>.<service>.<domain>`, which in turn answers the backend's address; PTR for VIPs.
import { parseAddress, type Addr } from './address.js';
import { emptySet, type RecordBackend, type RecordSet, type Scope, type SrvTarget } from './backend.js';
import { isSubdomain } from './name.js';
import type { ServiceView } from './records.js';
import type { RecordIndex } from './record-index.js';

export interface ServiceBackendOptions {
  domain: string;
  ttl: number;
}

/** The label a backend address gets under its service ("10-0-0-2", "fd00--2"). */
export function addressLabel(a: Addr): string {
  return a.ip.replace(/[.:]/g, '-');
}

function labelAddress(label: string): Addr | undefined {
  const v4 = label.replace(/-/g, '.');
  return parseAddress(v4) ?? parseAddress(label.replace(/-/g, ':'));
}

/** Looks services up in the index. */
export class ServiceBackend implements RecordBackend {
  readonly name = 'services';

  constructor(
    private readonly index: RecordIndex,
    private readonly opts: ServiceBackendOptions,
  ) {}

  private visible(scope: Scope, svc: ServiceView): boolean {
    if (!svc.networks || !scope.networks) return true;
    return svc.networks.some((n) => scope.networks!.has(n));
  }

  private service(scope: Scope, name: string): ServiceView | undefined {
    for (const svc of this.index.serviceNames.get(name) ?? []) if (this.visible(scope, svc)) return svc;
    return undefined;
  }

  lookup(scope: Scope, name: string): RecordSet | undefined {
    const vips = this.index.serviceVips.get(name);
    if (vips) return this.reverse(scope, vips);
    const { domain } = this.opts;
    let rest = name;
    if (domain !== '' && isSubdomain(name, domain)) {
      if (name === domain) return undefined;
      rest = name.slice(0, name.length - domain.length - 1);
    }
    const whole = this.service(scope, rest);
    if (whole) return this.addressSet(whole);
    const dot = rest.indexOf('.');
    if (dot < 0) return undefined;
    const first = rest.slice(0, dot);
    const parent = rest.slice(dot + 1);
    if (first.startsWith('_')) return this.srv(scope, first.slice(1), parent);
    const svc = this.service(scope, parent);
    const addr = svc && labelAddress(first);
    const backend = addr && svc.backends.find((b) => b.addr.ip === addr.ip);
    if (!backend) return undefined;
    const set = emptySet(this.opts.ttl);
    set.addrs.push(backend.addr);
    return set;
  }

  private addressSet(svc: ServiceView): RecordSet {
    const set = emptySet(this.opts.ttl);
    if (svc.vip) set.addrs.push(svc.vip);
    else set.addrs.push(...svc.backends.map((b) => b.addr));
    return set;
  }

  /** `_<port>._<proto>.<service>`: port is the port's name or number. */
  private srv(scope: Scope, portLabel: string, rest: string): RecordSet | undefined {
    const dot = rest.indexOf('.');
    if (dot < 0 || !rest.startsWith('_')) return undefined;
    const proto = rest.slice(1, dot);
    const svc = this.service(scope, rest.slice(dot + 1));
    if (!svc) return undefined;
    const port = svc.ports.find((p) => p.proto === proto && (p.name === portLabel || String(p.port) === portLabel));
    if (!port) return undefined;
    const set = emptySet(this.opts.ttl);
    const suffix = [svc.name, this.opts.domain].filter((s) => s).join('.');
    set.srv = svc.backends.map(
      (b): SrvTarget => ({ priority: 0, weight: 10, port: b.port ?? port.targetPort, target: `${addressLabel(b.addr)}.${suffix}`, addrs: [b.addr] }),
    );
    return set;
  }

  private reverse(scope: Scope, svcs: Set<ServiceView>): RecordSet | undefined {
    const set = emptySet(this.opts.ttl);
    for (const svc of svcs) {
      if (this.visible(scope, svc)) set.ptr.push([svc.name, this.opts.domain].filter((s) => s).join('.'));
    }
    return set.ptr.length ? set : undefined;
  }
}
