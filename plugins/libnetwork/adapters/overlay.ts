// The Docker remote network driver `tsoverlay`: NetworkDriverBackend over the overlay driver.
// Scope "global": with a cluster store (dockerd --cluster-store) the engine shows a network made
// on one host to every host under ONE id, calls CreateNetwork only on the creating host, and
// CreateEndpoint/Join on the host of each container — which matches the overlay's records.
import { OVERLAY_OPTION_KEYS, type OverlayNetworkInput } from '../../drivers/overlay/config.js';
import type { OverlayDriver } from '../../drivers/overlay/overlay.js';
import { isDriverError } from '../../drivers/common/errors.js';
import type {
  CreateEndpointInput,
  CreateEndpointResult,
  CreateNetworkInput,
  DriverCapabilities,
  EndpointRef,
  JoinInput,
  JoinResult,
  NetworkDriverBackend,
  ProgramExternalConnectivityInput,
  RequestContext,
} from '../backend.js';
import { badOption, PluginError } from '../errors.js';
import type { AllocationOwners } from './owners.js';

export interface DockerOverlayOptions {
  driver: OverlayDriver;
  /** Plugin name, for messages (default "tsoverlay"). */
  name?: string;
  /** Records endpoint ids on tsipam allocations (for GC); optional. */
  owners?: AllocationOwners;
  /** Called after a successful Join (e.g. to learn the container's name from the engine). */
  onJoined?: (ref: EndpointRef) => void;
}

/** Docker's own overlay driver spells the VNI this way (one per subnet; we take one). */
export const DOCKER_VXLANID_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

const DRIVER_KEYS: ReadonlySet<string> = new Set(OVERLAY_OPTION_KEYS);

/** CreateNetwork → the overlay driver's network input (IPv4 only; a bad `-o` names itself). */
export function overlayNetworkInput(input: CreateNetworkInput, driver: string): OverlayNetworkInput {
  const o = input.options;
  if (input.ipv6.length > 0 || o.enableIPv6) throw badOption('--ipv6', true, `${driver} networks are IPv4 only`);
  if (o.containerIfacePrefix !== undefined) {
    throw badOption('com.docker.network.container_iface_prefix', o.containerIfacePrefix, `not supported by ${driver} (containers get eth0, eth1, …)`);
  }
  const options: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(o.driverOpts)) {
    if (key === DOCKER_VXLANID_OPTION) {
      const ids = value.split(',').filter((v) => v !== '');
      if (ids.length !== 1) throw badOption(key, value, `${driver} takes one VNI per network`);
      options.vni = ids[0]!;
      continue;
    }
    if (!DRIVER_KEYS.has(key)) {
      throw badOption(key, value, `not an option of the ${driver} driver (known: ${DOCKER_VXLANID_OPTION}, com.docker.network.driver.mtu, com.docker.network.bridge.name, .enable_icc, .enable_ip_masquerade, ${[...DRIVER_KEYS].join(', ')})`);
    }
    options[key] = value;
  }
  if (o.mtu !== undefined) options.mtu = o.mtu;
  if (o.bridge.name !== undefined) options.bridge = o.bridge.name;
  if (o.bridge.enableIcc !== undefined) options.icc = o.bridge.enableIcc;
  if (o.bridge.enableIpMasquerade !== undefined) options.masquerade = o.bridge.enableIpMasquerade;
  if (o.bridge.hostBindingIp !== undefined) throw badOption('com.docker.network.bridge.host_binding_ipv4', o.bridge.hostBindingIp, `${driver} does not publish ports`);
  return {
    id: input.networkId,
    subnets: input.ipv4.map((d) => ({ subnet: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}) })),
    internal: o.internal,
    options,
  };
}

export class DockerOverlayNetwork implements NetworkDriverBackend {
  readonly capabilities: DriverCapabilities = { scope: 'global', connectivityScope: 'global' };
  private readonly name: string;

  constructor(private readonly opts: DockerOverlayOptions) {
    this.name = opts.name ?? 'tsoverlay';
  }

  async createNetwork(input: CreateNetworkInput, ctx: RequestContext): Promise<void> {
    if (input.ipv4.length === 0) throw new PluginError('no-subnet', 'bad-request', `${this.name} networks need an IPv4 subnet (the IPAM driver gave none)`);
    const rec = await this.opts.driver.createNetwork(overlayNetworkInput(input, this.name));
    ctx.log.info({ requestId: ctx.requestId, network: input.networkId, vni: rec.vni, mtu: rec.mtu }, 'overlay network created');
  }

  async deleteNetwork(input: { networkId: string }): Promise<void> {
    await this.opts.driver.deleteNetwork(input.networkId);
    this.opts.owners?.forget(input.networkId);
  }

  async createEndpoint(input: CreateEndpointInput, ctx: RequestContext): Promise<CreateEndpointResult> {
    const given = input.interface;
    if (given.addressIPv6) throw new PluginError('ipv6-unsupported', 'bad-request', `${this.name} endpoints are IPv4 only (got ${given.addressIPv6})`);
    if (!given.address) throw new PluginError('no-address', 'bad-request', `endpoint ${input.endpointId} has no address (${this.name} needs one from the IPAM driver)`);
    const rec = await this.opts.driver.createEndpoint(input.networkId, {
      id: input.endpointId,
      addresses: [given.address],
      ...(given.macAddress ? { mac: given.macAddress } : {}),
      exposed: input.options.exposedPorts.map((p) => ({ proto: p.proto, port: p.port })),
    });
    const net = await this.opts.driver.network(input.networkId);
    if (net && this.opts.owners) await this.opts.owners.record(input.networkId, net.subnets, rec.addresses, input.endpointId, ctx.log);
    // Never change what the engine set; the MAC derived from the address is what peers program.
    return given.macAddress || !rec.mac ? {} : { interface: { macAddress: rec.mac } };
  }

  async endpointOperInfo(input: EndpointRef): Promise<Record<string, unknown>> {
    const ep = await this.opts.driver.endpoint(input.networkId, input.endpointId);
    if (!ep) return {};
    return { ...(ep.mac ? { 'com.docker.network.endpoint.macaddress': ep.mac } : {}), ...(ep.hostVeth ? { hostInterface: ep.hostVeth } : {}), hostId: ep.hostId };
  }

  async deleteEndpoint(input: EndpointRef): Promise<void> {
    await this.opts.driver.deleteEndpoint(input.networkId, input.endpointId);
  }

  async join(input: JoinInput, ctx: RequestContext): Promise<JoinResult> {
    let r;
    try {
      r = await this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' });
    } catch (err) {
      if (!isDriverError(err, 'endpoint-joined')) throw err;
      // A second Join means our first reply was lost (restart in between): make the pair again.
      ctx.log.warn({ requestId: ctx.requestId, endpoint: input.endpointId }, 'Join for a joined endpoint: re-creating its interface');
      await this.opts.driver.leave(input.networkId, input.endpointId);
      r = await this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' });
    }
    this.opts.onJoined?.({ networkId: input.networkId, endpointId: input.endpointId });
    return { interfaceName: { srcName: r.srcName!, dstPrefix: 'eth' }, ...(r.gateways.ipv4 ? { gateway: r.gateways.ipv4 } : {}) };
  }

  async leave(input: EndpointRef): Promise<void> {
    await this.opts.driver.leave(input.networkId, input.endpointId);
  }

  async programExternalConnectivity(input: ProgramExternalConnectivityInput): Promise<void> {
    if (input.options.portMappings.length === 0) return;
    throw new PluginError('ports-unsupported', 'bad-request', `${this.name} does not publish ports (-p); connect the container to a tsbridge network for that`);
  }

  async revokeExternalConnectivity(): Promise<void> {
    // Nothing was published (programExternalConnectivity refuses mappings).
  }
}
