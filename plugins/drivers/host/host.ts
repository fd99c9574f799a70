// The host driver's verbs: endpoints that use the host's own network stack. Nothing is created in
// any namespace; the endpoint (container, names, host addresses, exposed ports) is recorded so DNS
// answers for it, and its exposed ports are reserved as host ports so no published port takes them.
import type { Kernel } from '../../../netlink/index.js';
import type { HostPortAllocator, Reservation } from '../../../proxy/allocator.js';
import type { Store } from '../../../store/index.js';
import { DriverError } from '../common/errors.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { RecordStore } from '../common/record-store.js';
import type { EndpointRecord, NetworkRecord, PortBindingRecord } from '../common/records.js';
import { parseBool } from '../common/validate.js';
import { parseHostEndpoint, parseHostNetwork, type HostEndpointInput, type HostNetworkInput } from './config.js';

/** The host-port reservations a host endpoint needs (proxy/allocator.ts `HostPortAllocator` satisfies it). */
export type HostPortReserver = Pick<HostPortAllocator, 'reserve' | 'release'>;

export interface HostDriverOptions {
  store: Store;
  hostId: string;
  /** Reads the host's addresses when an endpoint names none. */
  kernel?: Kernel;
  /** The host namespace by path; undefined = this process's own. */
  hostNetns?: string;
  /** Host-port reservations (share the firewall's allocator); without one, exposed ports are only recorded. */
  ports?: HostPortReserver;
  log?: DriverLogger;
  now?: () => Date;
}

/** What reconcile did. */
export interface HostReconcileReport {
  /** Endpoints whose exposed ports were reserved again. */
  reserved: string[];
  errors: string[];
}

/** Wildcards of both families: a host-network process binds its ports on every address. */
const EVERY_ADDRESS = ['0.0.0.0', '::'];

/** The host driver. */
export class HostDriver {
  private readonly records: RecordStore;
  private readonly log: DriverLogger;
  private readonly now: () => Date;

  constructor(private readonly opts: HostDriverOptions) {
    this.log = opts.log ?? silentLogger;
    this.records = new RecordStore(opts.store, (key, err) => this.log.error({ key, err: err.message }, 'skipping unreadable record'));
    this.now = opts.now ?? (() => new Date());
  }

  /** Record a host network (idempotent; an id held by another driver or host is a conflict). */
  async createNetwork(input: HostNetworkInput): Promise<NetworkRecord> {
    const cfg = parseHostNetwork(input, this.log);
    const rec: NetworkRecord = {
      id: cfg.id,
      ...(cfg.name !== undefined ? { name: cfg.name } : {}),
      driver: 'host',
      scope: 'local',
      hostId: this.opts.hostId,
      subnets: [],
      gateways: [],
      internal: false,
      icc: true,
      masquerade: false,
      ipv6: false,
      options: cfg.options,
      createdAt: this.now().toISOString(),
    };
    const out = await this.records.createNetwork(rec);
    if (!out.created) {
      this.assertOurs(out.record);
      if (JSON.stringify(out.record.options) !== JSON.stringify(rec.options)) {
        throw new DriverError('network-exists', `network ${cfg.id} exists with options ${JSON.stringify(out.record.options)}`);
      }
    }
    return out.record;
  }

  /** Remove a host network with its endpoints on this host (their reservations too). Missing = done. */
  async deleteNetwork(networkId: string): Promise<void> {
    const rec = await this.records.getNetwork(networkId);
    if (!rec) return;
    this.assertOurs(rec);
    for (const ep of await this.records.listEndpoints(networkId)) {
      if (ep.hostId === this.opts.hostId) await this.deleteEndpoint(networkId, ep.id);
    }
    await this.records.deleteNetwork(networkId);
  }

  network(networkId: string): Promise<NetworkRecord | undefined> {
    return this.records.getNetwork(networkId);
  }

  /**
   * Record an endpoint on the host's stack: its addresses are the ones given, else the host's
   * global addresses; its exposed ports are reserved (port-taken when a published port holds one).
   * Idempotent for the same input. Nothing is half-made: a failed record gives the ports back.
   */
  async createEndpoint(networkId: string, input: HostEndpointInput): Promise<EndpointRecord> {
    const net = await this.requireNetwork(networkId);
    const ep = parseHostEndpoint(input);
    const existing = await this.records.getEndpoint(networkId, ep.id);
    if (existing) return this.sameEndpoint(existing, ep.exposed);
    const addresses = ep.addresses?.map((a) => `${a}/${a.includes(':') ? 128 : 32}`) ?? (await this.hostAddresses());
    const reserve = net.options.reservePorts === undefined || parseBool('reservePorts', net.options.reservePorts);
    const reservations = reserve ? await this.reserve(ep.id, ep.exposed) : [];
    let done = false;
    try {
      const rec: EndpointRecord = {
        id: ep.id,
        networkId,
        hostId: this.opts.hostId,
        driver: 'host',
        ...(ep.containerId !== undefined ? { containerId: ep.containerId } : {}),
        names: ep.names,
        aliases: ep.aliases,
        addresses,
        ports: reservations.map(binding),
        exposed: ep.exposed,
        createdAt: this.now().toISOString(),
      };
      const out = await this.records.createEndpoint(rec);
      done = true;
      return out.created ? rec : this.sameEndpoint(out.record, ep.exposed);
    } finally {
      if (!done && reservations.length > 0) await this.opts.ports?.release(ep.id, reservations);
    }
  }

  endpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    return this.records.getEndpoint(networkId, endpointId);
  }

  /** Mark the endpoint joined (the container runs on the host's stack). Returns its addresses. */
  async join(networkId: string, endpointId: string): Promise<{ addresses: string[] }> {
    await this.requireNetwork(networkId);
    const updated = await this.records.updateEndpoint(networkId, endpointId, (cur) => ({
      ...cur,
      sandbox: { mode: 'host', joinedAt: this.now().toISOString() },
    }));
    if (!updated) throw new DriverError('unknown-endpoint', `endpoint ${JSON.stringify(endpointId)} does not exist on network ${JSON.stringify(networkId)}`);
    return { addresses: updated.addresses };
  }

  /** Mark the endpoint left. Missing = done. */
  async leave(networkId: string, endpointId: string): Promise<void> {
    await this.records.updateEndpoint(networkId, endpointId, ({ sandbox: _s, ...rest }) => rest);
  }

  /** Give the endpoint's ports back and remove its record. Missing = done. */
  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const ep = await this.records.getEndpoint(networkId, endpointId);
    if (!ep) return;
    if (ep.ports.length > 0 && this.opts.ports) {
      await this.opts.ports.release(ep.id, ep.ports.map((p) => ({ proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort })));
    }
    await this.records.deleteEndpoint(networkId, endpointId);
  }

  /**
   * Reserve the recorded ports of this host's endpoints again (an allocator without a store
   * forgets them on restart; with one, asking again as the same owner changes nothing).
   */
  async reconcile(): Promise<HostReconcileReport> {
    const report: HostReconcileReport = { reserved: [], errors: [] };
    if (!this.opts.ports) return report;
    for (const ep of await this.records.listAllEndpoints()) {
      if (ep.driver !== 'host' || ep.hostId !== this.opts.hostId || ep.ports.length === 0) continue;
      try {
        await this.opts.ports.reserve(ep.id, ep.ports.map((p) => ({ proto: p.proto, hostIps: [p.hostIp], hostPort: p.hostPort, hostPortEnd: p.hostPort })));
        report.reserved.push(ep.id);
      } catch (err) {
        report.errors.push(`endpoint ${ep.id}: ${(err as Error).message}`);
      }
    }
    return report;
  }

  private async reserve(owner: string, exposed: EndpointRecord['exposed']): Promise<Reservation[]> {
    if (!this.opts.ports || exposed.length === 0) return [];
    return this.opts.ports.reserve(
      owner,
      exposed.map((p) => ({ proto: p.proto, hostIps: EVERY_ADDRESS, hostPort: p.port, hostPortEnd: p.port })),
    );
  }

  /** The host's global addresses, without the gateways of our own networks. */
  private async hostAddresses(): Promise<string[]> {
    if (!this.opts.kernel) return [];
    const ours = new Set((await this.records.listNetworks()).flatMap((n) => n.gateways));
    const addrs = await this.opts.kernel.ns(this.opts.hostNetns ?? null).addresses();
    return addrs.filter((a) => a.scope === 'global' && !ours.has(a.address)).map((a) => a.cidr);
  }

  private sameEndpoint(rec: EndpointRecord, exposed: EndpointRecord['exposed']): EndpointRecord {
    if (rec.hostId !== this.opts.hostId || rec.driver !== 'host' || JSON.stringify(rec.exposed) !== JSON.stringify(exposed)) {
      throw new DriverError('endpoint-exists', `endpoint ${rec.id} already exists with other exposed ports or on another host`);
    }
    return rec;
  }

  private async requireNetwork(networkId: string): Promise<NetworkRecord> {
    const rec = await this.records.getNetwork(networkId);
    if (!rec) throw new DriverError('unknown-network', `network ${JSON.stringify(networkId)} does not exist (was it created with the host driver?)`);
    this.assertOurs(rec);
    return rec;
  }

  private assertOurs(rec: NetworkRecord): void {
    if (rec.driver !== 'host') throw new DriverError('wrong-driver', `network ${rec.id} belongs to the ${rec.driver} driver`);
    if (rec.hostId !== this.opts.hostId) throw new DriverError('network-other-host', `network ${rec.id} is a host network of host ${rec.hostId ?? '?'}`);
  }
}

function binding(r: Reservation): PortBindingRecord {
  return { proto: r.proto, hostIp: r.hostIp, hostPort: r.hostPort, containerIp: r.hostIp, containerPort: r.hostPort };
}
