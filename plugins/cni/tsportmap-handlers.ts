// tsportmap's verbs: `runtimeConfig.portMappings` of the container in prevResult published
// through the proxy's firewall (DNAT for local destinations only, jumps appended after what
// the built-in chains hold, host ports reserved per protocol and host address). Works after
// tsbridge (its network) and after any other bridge plugin (a "foreign" network for the
// bridge named in prevResult). The attachment record is written before publishing.
import { HostPortAllocator, type Reservation } from '../../proxy/allocator.js';
import type { Firewall } from '../../proxy/firewall.js';
import { fromCniPortMappings, type PortRequest } from '../../proxy/ports.js';
import { RecordStore } from '../drivers/common/record-store.js';
import { cidr as cidrMath } from '../../ipam/index.js';
import type { Store } from '../../store/types.js';
import { foreignNetworks, getAttachment, listAttachments, setSection, type CniAttachmentRecord, type PortmapSection } from './attachments.js';
import { confString, DEFAULT_STORE_URL, withStore, type CniContext } from './context.js';
import { CniError, ErrorCode, invalidConfig, unsupportedField } from './errors.js';
import type { CniRequest, PluginHandlers } from './skel.js';
import type { Result } from './types.js';

/** The container side of a prevResult: its addresses and the host interface it hangs off. */
export interface PortmapTarget {
  containerIp: string;
  containerIpv6?: string;
  /** The first host-side interface of prevResult (the bridge, for bridge plugins). */
  hostIfname: string;
  subnets: string[];
}

/** Read the target from prevResult (CniError 7 when it has no container address or host interface). */
export function portmapTarget(prev: Result, ifname: string): PortmapTarget {
  const ifs = prev.interfaces ?? [];
  let ctr = ifs.findIndex((i) => i.sandbox && i.name === ifname);
  if (ctr < 0) ctr = ifs.findIndex((i) => i.sandbox);
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === undefined || ctr < 0 || ip.interface === ctr);
  const bare = ips.map((ip) => ip.address.split('/')[0]!);
  const v4 = bare.find((a) => !a.includes(':'));
  const v6 = bare.find((a) => a.includes(':'));
  if (!v4 && !v6) throw invalidConfig('prevResult.ips', prev.ips ?? [], 'no container address to map ports to');
  const host = ifs.find((i) => !i.sandbox);
  if (!host) throw invalidConfig('prevResult.interfaces', ifs, 'no host-side interface (tsportmap follows a bridge plugin)');
  const subnets = [...new Set(ips.map((ip) => cidrMath.formatCidr(cidrMath.parseCidr(ip.address, 'address', { allowHostBits: true }))))];
  return { containerIp: v4 ?? '', ...(v6 ? { containerIpv6: v6 } : {}), hostIfname: host.name, subnets };
}

/** The firewall endpoint of an attachment's ports (≤ 128 characters, the proxy's name limit). */
export function portmapEndpointId(network: string, containerId: string, ifname: string): string {
  const id = `cni:${network}:${containerId}:${ifname}`;
  return id.length <= 128 ? id : `cni:${containerId}:${ifname}`.slice(0, 128);
}

/** The host ports `requested` takes (what the firewall's publish reserves for them). */
export function reservationsOf(requested: readonly PortRequest[], s: Pick<PortmapSection, 'containerIp' | 'containerIpv6'>): Reservation[] {
  return requested.flatMap((r) => {
    const ips = r.hostIp !== '' ? [r.hostIp] : [...(s.containerIp ? ['0.0.0.0'] : []), ...(s.containerIpv6 ? ['::'] : [])];
    return ips.map((hostIp) => ({ proto: r.proto, hostIp, hostPort: r.hostPort }));
  });
}

function refuseUnsupported(conf: Record<string, unknown>): void {
  for (const k of ['conditionsV4', 'conditionsV6']) {
    if (Array.isArray(conf[k]) && (conf[k] as unknown[]).length > 0) throw unsupportedField(k, conf[k], 'extra match conditions are not supported');
  }
  if (conf.externalSetMarkChain) throw unsupportedField('externalSetMarkChain', conf.externalSetMarkChain);
}

type Base = Pick<CniAttachmentRecord, 'network' | 'containerId' | 'ifname' | 'hostId' | 'netns'>;

/** The tsportmap verbs with their dependencies. */
export class TsportmapHandlers implements PluginHandlers {
  constructor(private readonly ctx: CniContext) {}

  private storeUrl(req: CniRequest): string {
    return confString(req.conf as unknown as Record<string, unknown>, 'store') ?? DEFAULT_STORE_URL;
  }

  private base(req: CniRequest): Base {
    return { network: req.conf.name, containerId: req.env.containerId, ifname: req.env.ifname, hostId: this.ctx.hostId, ...(req.env.netns ? { netns: req.env.netns } : {}) };
  }

  /** ADD: publish and record; prevResult passes through unchanged. */
  async add(req: CniRequest): Promise<undefined> {
    refuseUnsupported(req.conf as unknown as Record<string, unknown>);
    const requested = fromCniPortMappings(req.options.portMappings.map((m) => ({ ...m, ...(m.hostIP ? { hostIP: m.hostIP } : {}) })));
    if (requested.length === 0) return undefined;
    if (!req.prevResult) throw invalidConfig('prevResult', null, 'tsportmap is a chained plugin: it needs the result of an interface plugin');
    const target = portmapTarget(req.prevResult, req.env.ifname);
    const base = this.base(req);
    const endpointId = portmapEndpointId(base.network, base.containerId, base.ifname);
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      const section = await this.plan(store, base, endpointId, target, requested);
      try {
        await this.ctx.withFirewall(store, (fw) => this.publish(fw, store, base, section));
      } catch (err) {
        // The final apply (or publish) failed: no rule, reservation or record may stay.
        await this.teardown(store, base).catch((e: Error) => this.ctx.warn(`tsportmap: rollback: ${e.message}`));
        throw err;
      }
    });
    return undefined;
  }

  /** The section to record: tsbridge's network when it owns the bridge, else a foreign one. */
  private async plan(store: Store, base: Base, endpointId: string, t: PortmapTarget, requested: PortRequest[]): Promise<PortmapSection> {
    const nets = await new RecordStore(store).listNetworks();
    const ours = nets.find((n) => n.driver === 'bridge' && n.hostId === this.ctx.hostId && n.bridge === t.hostIfname);
    const section: PortmapSection = {
      networkId: ours?.id ?? `cni-pm:${base.network}`,
      endpointId,
      containerIp: t.containerIp,
      ...(t.containerIpv6 ? { containerIpv6: t.containerIpv6 } : {}),
      requested,
      bindings: [],
    };
    if (!ours) section.foreign = { id: section.networkId, bridge: t.hostIfname, subnets: t.subnets };
    return section;
  }

  private async publish(fw: Firewall, store: Store, base: Base, section: PortmapSection): Promise<void> {
    if (section.foreign) {
      const known = foreignNetworks(await listAttachments(store, base.network)).find((f) => f.id === section.foreign!.id);
      const subnets = [...new Set([...(known?.subnets ?? []), ...section.foreign.subnets])];
      await fw.setNetwork({ id: section.foreign.id, bridge: section.foreign.bridge, subnets, masquerade: false });
    }
    await setSection(store, base, 'portmap', section);
    try {
      const spec = { networkId: section.networkId, containerIp: section.containerIp, ...(section.containerIpv6 ? { containerIpv6: section.containerIpv6 } : {}), mappings: section.requested };
      const bindings = await fw.publish(section.endpointId, spec);
      await setSection(store, base, 'portmap', { ...section, bindings });
    } catch (err) {
      await fw.unpublish(section.endpointId).catch(() => undefined);
      await setSection(store, base, 'portmap', undefined).catch(() => undefined);
      throw err;
    }
  }

  /** Remove the attachment's rules, reservations and record (missing = done). */
  private async teardown(store: Store, base: Base): Promise<void> {
    const rec = await getAttachment(store, base.network, base.containerId, base.ifname);
    const p = rec?.portmap;
    if (!p) return;
    await this.ctx.withFirewall(store, async (fw) => {
      await fw.unpublish(p.endpointId);
      // A crash between reserving and recording the bindings leaves reservations only `requested` explains.
      await new HostPortAllocator({ hostId: this.ctx.hostId, store }).release(p.endpointId, reservationsOf(p.requested ?? [], p));
      await setSection(store, base, 'portmap', undefined);
    });
  }

  /** DEL (SPEC §2): idempotent; needs neither the netns nor prevResult. */
  async del(req: CniRequest): Promise<void> {
    await withStore(this.ctx, this.storeUrl(req), (store) => this.teardown(store, this.base(req)));
  }

  /** CHECK: the recorded bindings are the mappings asked for, and their DNAT rules are live. */
  async check(req: CniRequest): Promise<void> {
    const requested = fromCniPortMappings(req.options.portMappings.map((m) => ({ ...m })));
    const base = this.base(req);
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      const rec = await getAttachment(store, base.network, base.containerId, base.ifname);
      const p = rec?.portmap;
      if (requested.length === 0 && !p) return;
      if (!p) throw new CniError(ErrorCode.UnknownContainer, `tsportmap CHECK: no port mappings recorded for container ${base.containerId} (${base.ifname})`);
      const key = (r: PortRequest) => `${r.proto}/${r.hostIp}/${r.hostPort}/${r.containerPort}`;
      if (JSON.stringify(requested.map(key).sort()) !== JSON.stringify(p.requested.map(key).sort())) {
        throw new CniError(ErrorCode.Internal, `tsportmap CHECK: recorded mappings ${JSON.stringify(p.requested)} differ from runtimeConfig.portMappings`);
      }
      const { checkBindings } = await import('./portmap-check.js');
      const { readFirewallBackend, stateDirOfStore } = await import('./host-state.js');
      await checkBindings(p.bindings, readFirewallBackend(stateDirOfStore(this.storeUrl(req))) ?? 'iptables');
    });
  }

  /** STATUS: 50 without a reachable store. */
  async status(req: CniRequest): Promise<void> {
    const url = this.storeUrl(req);
    try {
      await withStore(this.ctx, url, (s) => s.revision());
    } catch (err) {
      if ((err as { kind?: unknown }).kind === 'bad-request') throw err;
      throw new CniError(ErrorCode.PluginNotAvailable, `tsportmap: store ${url} is unreachable`, (err as Error).message);
    }
  }

  /** GC: this network's attachments on this host that the runtime no longer lists lose their ports. */
  async gc(req: CniRequest): Promise<void> {
    const valid = new Set(req.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      for (const a of await listAttachments(store, req.conf.name)) {
        if (a.hostId !== this.ctx.hostId || !a.portmap || valid.has(`${a.containerId}\0${a.ifname}`)) continue;
        await this.teardown(store, a);
      }
    });
  }
}

/** tsportmap's handlers for a context. */
export function createTsportmapHandlers(ctx: CniContext): PluginHandlers {
  return new TsportmapHandlers(ctx);
}
