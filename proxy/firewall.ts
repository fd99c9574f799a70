// The facade drivers call for every firewall rule: networks, published ports, links, service
// VIPs. Holds the desired state in memory, applies only what a change touches through one
// backend (iptables-restore per family, or one nft transaction) chosen at construction, rolls
// back on failure, and reconciles against the kernel's dump.
import { AsyncLocalStorage } from 'node:async_hooks';
import { HostPortAllocator, readListeners, type PortWant, type Reservation } from './allocator.js';
import type { LinkState, NetworkState, PortBinding, ServiceState } from './build.js';
import type { BackendKind, FirewallBackend } from './backend.js';
import { DesiredState, type Changed } from './desired.js';
import { ProxyError } from './errors.js';
import { NetnsTools } from './exec.js';
import type { ApplyStats } from './iptables.js';
import { IptablesRules } from './iptables-rules.js';
import { NftRules } from './nft.js';
import { checkRequest } from './ports.js';
import type { Family } from './rules.js';
import { checkLink, checkNetwork, checkService, memberIp, type LinkSpec, type NetworkSpec, type PublishSpec, type ServiceSpec } from './specs.js';
import { requiredSysctls, type Sysctl } from './sysctl.js';
import { familyOf, objectName } from './validate.js';
import * as v from './validate.js';

export type { PortBinding } from './build.js';

export interface FirewallOptions {
  /** Network namespace to program (undefined = the daemon's own). */
  netnsPath?: string;
  tools?: NetnsTools;
  /** Host-port reservations (default: in this process only, host id "local", avoiding the namespace's listeners). */
  allocator?: HostPortAllocator;
  /** Whether a specific host address belongs to this host (default: `ip -j addr` in the namespace). */
  isLocalAddress?: (ip: string) => Promise<boolean>;
  /** Whether an endpoint exists (checked before publishing or linking it, when given). */
  endpointExists?: (networkId: string, endpointId: string) => Promise<boolean>;
  /** Which kernel interface programs the rules (default iptables); fixed for the object's life. */
  backend?: BackendKind;
}

interface Published {
  networkId: string;
  bindings: PortBinding[];
  reservations: Reservation[];
}

const FAMILIES: readonly Family[] = [4, 6];

/** Default local-address check: the namespace's interface addresses, plus 127.0.0.0/8. */
export function localAddressChecker(tools: NetnsTools): (ip: string) => Promise<boolean> {
  return async (ip) => {
    if (familyOf(ip) === 4 && v.contains('127.0.0.0/8', ip)) return true;
    const out = await tools.run('ip', ['-j', 'addr', 'show']);
    const links = JSON.parse(out) as { addr_info?: { local?: string }[] }[];
    return links.some((l) => (l.addr_info ?? []).some((a) => a.local !== undefined && v.ip(a.local, 'local').addr === ip));
  };
}

export class Firewall {
  private readonly tools: NetnsTools;
  private readonly rules: FirewallBackend;
  private readonly allocator: HostPortAllocator;
  private readonly isLocal: (ip: string) => Promise<boolean>;
  private readonly networks = new Map<string, NetworkState>();
  private readonly endpoints = new Map<string, Published>();
  private readonly links = new Map<string, LinkState & { id: string }>();
  private readonly services = new Map<string, ServiceState>();
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Inside bulk(): the chains to sync when it ends, per caller (async context). One instance-wide
   * set let a DEL that ran beside a long reconcile's bulk() put its changes in the reconcile's set
   * and return before they were applied (its rules outlived the DEL).
   */
  private readonly pending = new AsyncLocalStorage<Changed>();

  constructor(private readonly opts: FirewallOptions = {}) {
    this.tools = opts.tools ?? new NetnsTools(opts.netnsPath);
    this.rules = opts.backend === 'nft' ? new NftRules(this.tools) : new IptablesRules(this.tools);
    this.allocator = opts.allocator ?? new HostPortAllocator({ hostId: 'local', listeners: () => readListeners(this.tools) });
    this.isLocal = opts.isLocalAddress ?? localAddressChecker(this.tools);
  }

  /** One operation at a time: the kernel tables and our view of them change together. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async sync(changed: Changed): Promise<void> {
    if (changed[4].size + changed[6].size) await this.rules.sync(changed);
  }

  /** Apply; on failure put the desired state back (undo) and re-apply it, then rethrow. */
  private async commit(changed: Changed, undo: () => Changed): Promise<void> {
    const pending = this.pending.getStore();
    if (pending) {
      for (const f of FAMILIES) for (const k of changed[f]) pending[f].add(k);
      return;
    }
    try {
      await this.sync(changed);
    } catch (err) {
      const back = undo();
      for (const f of FAMILIES) for (const k of changed[f]) back[f].add(k);
      await this.sync(back).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Run fn with kernel syncs deferred, then apply everything it changed in one transaction per
   * family (a restart re-adding thousands of endpoints). Validation and port conflicts still fail
   * the individual calls; a kernel failure at the end fails bulk() as a whole. What fn changes is
   * applied before bulk() returns; calls made beside it (other callers) are applied on their own.
   * A bulk() inside fn joins the enclosing one.
   */
  async bulk<T>(fn: () => Promise<T>): Promise<T> {
    if (this.pending.getStore()) return fn();
    const pending = DesiredState.changed();
    let result: T;
    try {
      result = await this.pending.run(pending, fn);
    } finally {
      await this.serial(() => this.sync(pending));
    }
    return result;
  }

  /** Install our base chains and jumps, repairing whatever differs (same as reconcile). */
  init(): Promise<Record<Family, ApplyStats>> {
    return this.reconcile();
  }

  /** Add or update a network (bridge, subnets, masquerade, ICC, internal). */
  setNetwork(spec: NetworkSpec): Promise<void> {
    const n = checkNetwork(spec);
    return this.serial(async () => {
      const clash = [...this.networks.values()].find((o) => o.bridge === n.bridge && o.id !== n.id);
      if (clash) throw new ProxyError('invalid-spec', `bridge ${n.bridge} already carries network ${clash.id}`);
      const prev = this.networks.get(n.id);
      this.networks.set(n.id, n);
      await this.commit(this.rules.setNetworks([...this.networks.values()]), () => {
        if (prev) this.networks.set(n.id, prev);
        else this.networks.delete(n.id);
        return this.rules.setNetworks([...this.networks.values()]);
      });
    });
  }

  /** Remove a network with the ports published and links made on it. Unknown ids are ignored. */
  async removeNetwork(id: string): Promise<void> {
    for (const [ep, p] of [...this.endpoints]) if (p.networkId === id) await this.unpublish(ep);
    for (const l of [...this.links.values()]) if (l.networkId === id) await this.removeLinkById(l.id);
    await this.serial(async () => {
      const prev = this.networks.get(id);
      if (!prev) return;
      this.networks.delete(id);
      await this.commit(this.rules.setNetworks([...this.networks.values()]), () => {
        this.networks.set(id, prev);
        return this.rules.setNetworks([...this.networks.values()]);
      });
    });
  }

  private network(id: unknown): NetworkState {
    const n = this.networks.get(objectName(id, 'networkId'));
    if (!n) throw new ProxyError('unknown-network', `network ${JSON.stringify(id)} is not known to the firewall`);
    return n;
  }

  private async checkEndpoint(networkId: string, endpointId: string): Promise<void> {
    if (this.opts.endpointExists && !(await this.opts.endpointExists(networkId, endpointId))) {
      throw new ProxyError('unknown-endpoint', `endpoint ${endpointId} does not exist on network ${networkId}`);
    }
  }

  /** Which host addresses a mapping takes: a wildcard per family the endpoint has, or the one named. */
  private async wants(n: NetworkState, spec: PublishSpec): Promise<{ wants: PortWant[]; targets: Record<Family, string | undefined>; ports: number[] }> {
    const targets: Record<Family, string | undefined> = { 4: undefined, 6: undefined };
    for (const [field, value] of [['containerIp', spec.containerIp], ['containerIpv6', spec.containerIpv6]] as const) {
      if (value === undefined || value === '') continue;
      const a = memberIp(n, value, field);
      targets[familyOf(a)] = a;
    }
    if (!targets[4] && !targets[6]) throw new ProxyError('invalid-address', `endpoint has no address on network ${n.id}`);
    const local = new Map<string, boolean>();
    const wants: PortWant[] = [];
    const ports: number[] = [];
    if (!Array.isArray(spec.mappings)) throw new ProxyError('invalid-spec', `mappings: ${JSON.stringify(spec.mappings)} is not a list`);
    for (const [i, raw] of spec.mappings.entries()) {
      const r = checkRequest(raw, `mappings[${i}]`);
      let hostIps: string[];
      if (r.hostIp === '') hostIps = [...(targets[4] ? [n.hostBindingIpv4 ?? '0.0.0.0'] : []), ...(targets[6] ? ['::'] : [])];
      else {
        const fam = familyOf(r.hostIp);
        if (!targets[fam]) throw new ProxyError('invalid-address', `mappings[${i}]: host address ${r.hostIp} is IPv${fam} but the endpoint has no IPv${fam} address`);
        if (r.hostIp === '::1') throw new ProxyError('invalid-address', `mappings[${i}]: ::1 cannot be published (IPv6 has no route_localnet)`);
        hostIps = [r.hostIp];
      }
      for (const ip of hostIps) {
        if (ip === '0.0.0.0' || ip === '::' || local.get(ip)) continue;
        if (!(await this.isLocal(ip))) throw new ProxyError('host-ip-not-local', `mappings[${i}]: host address ${ip} is not an address of this host`);
        local.set(ip, true);
      }
      wants.push({ proto: r.proto, hostIps, hostPort: r.hostPort, hostPortEnd: r.hostPortEnd });
      ports.push(r.containerPort);
    }
    return { wants, targets, ports };
  }

  /**
   * Publish an endpoint's ports (replacing what it published before). Resolves with the
   * bindings, host ports chosen; on any error nothing is reserved or applied.
   */
  publish(endpointId: string, spec: PublishSpec): Promise<PortBinding[]> {
    return this.serial(async () => {
      const id = objectName(endpointId, 'endpointId');
      const n = this.network(spec?.networkId);
      if (n.internal) throw new ProxyError('network-internal', `network ${n.id} is internal: its ports cannot be published`);
      const { wants, targets, ports } = await this.wants(n, spec);
      await this.checkEndpoint(n.id, id);
      const prev = this.endpoints.get(id);
      const reservations = await this.allocator.reserve(id, wants).catch(async (err: unknown) => {
        // A failed reserve gives back what it took, which may include what prev held: take it again.
        if (prev) await this.allocator.reserve(id, prev.reservations.map((r) => ({ proto: r.proto, hostIps: [r.hostIp], hostPort: r.hostPort, hostPortEnd: r.hostPort }))).catch(() => undefined);
        throw err;
      });
      const bindings: PortBinding[] = [];
      let k = 0;
      wants.forEach((w, i) => {
        for (const hostIp of w.hostIps) {
          const r = reservations[k++]!;
          bindings.push({ proto: r.proto, hostIp, hostPort: r.hostPort, containerIp: targets[familyOf(hostIp)]!, containerPort: ports[i]! });
        }
      });
      const same = (a: Reservation, b: Reservation) => a.proto === b.proto && a.hostIp === b.hostIp && a.hostPort === b.hostPort;
      try {
        await this.commit(this.rules.setBindings(id, prev?.bindings ?? [], bindings), () => this.rules.setBindings(id, bindings, prev?.bindings ?? []));
      } catch (err) {
        await this.allocator.release(id, reservations.filter((r) => !prev?.reservations.some((p) => same(p, r))));
        throw err;
      }
      if (prev) await this.allocator.release(id, prev.reservations.filter((p) => !reservations.some((r) => same(p, r))));
      this.endpoints.set(id, { networkId: n.id, bindings, reservations });
      return bindings;
    });
  }

  /** The bindings an endpoint holds now. */
  bindings(endpointId: string): PortBinding[] {
    return [...(this.endpoints.get(endpointId)?.bindings ?? [])];
  }

  /** Withdraw an endpoint's ports, free its host ports, flush its UDP conntrack entries. Idempotent. */
  unpublish(endpointId: string): Promise<void> {
    return this.serial(async () => {
      const prev = this.endpoints.get(endpointId);
      if (!prev) return;
      await this.commit(this.rules.setBindings(endpointId, prev.bindings, []), () => this.rules.setBindings(endpointId, [], prev.bindings));
      this.endpoints.delete(endpointId);
      await this.allocator.release(endpointId, prev.reservations);
      for (const b of prev.bindings.filter((x) => x.proto === 'udp')) {
        await this.flushUdp(familyOf(b.containerIp), ['--orig-port-dst', String(b.hostPort), '--dst-nat', b.containerIp]);
      }
    });
  }

  /** Accept the target's exposed ports between two endpoints of a network (both directions). */
  setLink(spec: LinkSpec): Promise<void> {
    return this.serial(async () => {
      const n = this.network(spec?.networkId);
      const state = checkLink(n, spec);
      await this.checkEndpoint(n.id, spec.fromEndpoint);
      await this.checkEndpoint(n.id, spec.toEndpoint);
      const prev = this.links.get(state.id);
      this.links.set(state.id, state);
      await this.commit(this.rules.setLink(state.id, state), () => {
        if (prev) this.links.set(state.id, prev);
        else this.links.delete(state.id);
        return this.rules.setLink(state.id, prev);
      });
    });
  }

  /** Remove a link (idempotent). */
  removeLink(networkId: string, fromEndpoint: string, toEndpoint: string): Promise<void> {
    return this.removeLinkById(`${networkId}/${fromEndpoint}/${toEndpoint}`);
  }

  private removeLinkById(id: string): Promise<void> {
    return this.serial(async () => {
      const prev = this.links.get(id);
      if (!prev) return;
      this.links.delete(id);
      await this.commit(this.rules.setLink(id, undefined), () => {
        this.links.set(id, prev);
        return this.rules.setLink(id, prev);
      });
    });
  }

  /** Add or update a service VIP; backends that left get no new connection and lose their UDP flows. */
  setService(spec: ServiceSpec): Promise<void> {
    const state = checkService(spec);
    return this.serial(async () => {
      const prev = this.services.get(state.name);
      this.services.set(state.name, state);
      await this.commit(this.rules.setService(state.name, state), () => {
        if (prev) this.services.set(state.name, prev);
        else this.services.delete(state.name);
        return this.rules.setService(state.name, prev);
      });
      if (prev) await this.flushService(prev, prev.vip === state.vip ? state.backends : []);
    });
  }

  /** Remove a service (idempotent). */
  removeService(name: string): Promise<void> {
    return this.serial(async () => {
      const prev = this.services.get(name);
      if (!prev) return;
      this.services.delete(name);
      await this.commit(this.rules.setService(name, undefined), () => {
        this.services.set(name, prev);
        return this.rules.setService(name, prev);
      });
      await this.flushService(prev, []);
    });
  }

  private async flushService(prev: ServiceState, kept: readonly string[]): Promise<void> {
    if (!prev.ports.some((p) => p.proto === 'udp')) return;
    for (const b of prev.backends) if (!kept.includes(b)) await this.flushUdp(prev.family, ['--orig-dst', prev.vip, '--dst-nat', b]);
  }

  /** Delete UDP conntrack entries (best effort: "0 flow entries" exits 1, and that is fine). */
  private async flushUdp(family: Family, match: string[]): Promise<void> {
    await this.tools.tryRun('conntrack', ['-D', '-f', family === 4 ? 'ipv4' : 'ipv6', '-p', 'udp', ...match]).catch(() => undefined);
  }

  /** Re-read the kernel and make it hold exactly the desired rules (repairs flushes, removes stale chains). */
  reconcile(): Promise<Record<Family, ApplyStats>> {
    return this.serial(() => this.rules.reconcile());
  }

  /** Reconcile every intervalMs until the returned function is called. */
  startReconciler(intervalMs: number, onError: (err: unknown) => void = () => {}): () => void {
    const timer = setInterval(() => this.reconcile().catch(onError), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Kernel settings these rules rely on (forwarding, route_localnet on our bridges only, br_netfilter). */
  requiredSysctls(): Sysctl[] {
    return requiredSysctls([...this.networks.values()], this.links.size > 0);
  }

  /** Stop the backend's helper processes (the rules stay); the object stays usable. */
  close(): void {
    this.rules.close();
  }

  /** The backend programming the kernel (tests, bench, doctor). */
  get backend(): FirewallBackend {
    return this.rules;
  }
}
