// The Docker remote network driver `tsbridge`: NetworkDriverBackend over the front-end-neutral
// bridge driver. Stateless here: every call reads the store, so a restarted daemon (which the
// engine does not re-activate) carries on where the previous one stopped.
import type { BridgeDriver } from '../../drivers/bridge/bridge.js';
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
import { PluginError } from '../errors.js';
import { bridgeNetworkInput, portRequests } from './network-options.js';
import type { AllocationOwners } from './owners.js';

export interface DockerBridgeOptions {
  driver: BridgeDriver;
  /** Plugin name, for messages (default "tsbridge"). */
  name?: string;
  /** Records endpoint ids on tsipam allocations (for GC); optional. */
  owners?: AllocationOwners;
  /** Called after a successful Join (e.g. to learn the container's name from the engine). */
  onJoined?: (ref: EndpointRef) => void;
}

/** The interface name prefix inside the container: eth0, eth1, … as with Docker's bridge. */
export const DST_PREFIX = 'eth';

export class DockerBridgeNetwork implements NetworkDriverBackend {
  readonly capabilities: DriverCapabilities = { scope: 'local', connectivityScope: 'local' };
  private readonly name: string;

  constructor(private readonly opts: DockerBridgeOptions) {
    this.name = opts.name ?? 'tsbridge';
  }

  async createNetwork(input: CreateNetworkInput, ctx: RequestContext): Promise<void> {
    if (input.ipv4.length === 0 && input.ipv6.length === 0) {
      throw new PluginError('no-subnet', 'bad-request', `${this.name} networks need a subnet (the IPAM driver gave none)`);
    }
    const rec = await this.opts.driver.createNetwork(bridgeNetworkInput(input, this.name));
    ctx.log.info({ requestId: ctx.requestId, network: input.networkId, bridge: rec.bridge }, 'network created');
  }

  async deleteNetwork(input: { networkId: string }): Promise<void> {
    await this.opts.driver.deleteNetwork(input.networkId);
    this.opts.owners?.forget(input.networkId);
  }

  async createEndpoint(input: CreateEndpointInput, ctx: RequestContext): Promise<CreateEndpointResult> {
    const given = input.interface;
    const addresses = [given.address, given.addressIPv6].filter((a): a is string => a !== undefined);
    if (addresses.length === 0) {
      throw new PluginError('no-address', 'bad-request', `endpoint ${input.endpointId} has no address (${this.name} needs one from the IPAM driver)`);
    }
    const rec = await this.opts.driver.createEndpoint(input.networkId, {
      id: input.endpointId,
      addresses,
      ...(given.macAddress ? { mac: given.macAddress } : {}),
      exposed: input.options.exposedPorts.map((p) => ({ proto: p.proto, port: p.port })),
    });
    const net = await this.opts.driver.network(input.networkId);
    if (net && this.opts.owners) await this.opts.owners.record(input.networkId, net.subnets, rec.addresses, input.endpointId, ctx.log);
    // Never change what the engine set; a MAC derived from the address is ours to offer.
    return given.macAddress || !rec.mac ? {} : { interface: { macAddress: rec.mac } };
  }

  async endpointOperInfo(input: EndpointRef): Promise<Record<string, unknown>> {
    const ep = await this.opts.driver.endpoint(input.networkId, input.endpointId);
    if (!ep) return {};
    return {
      ...(ep.mac ? { 'com.docker.network.endpoint.macaddress': ep.mac } : {}),
      ...(ep.hostVeth ? { hostInterface: ep.hostVeth } : {}),
      ...(ep.ports.length > 0 ? { ports: ep.ports } : {}),
    };
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
      // The engine joins an endpoint once; a second Join means our first reply was lost (a
      // restart between the kernel work and the answer), so the peer was never moved: redo it.
      ctx.log.warn({ requestId: ctx.requestId, endpoint: input.endpointId }, 'Join for a joined endpoint: re-creating its interface');
      await this.opts.driver.leave(input.networkId, input.endpointId);
      r = await this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' });
    }
    this.opts.onJoined?.({ networkId: input.networkId, endpointId: input.endpointId });
    return {
      interfaceName: { srcName: r.srcName!, dstPrefix: DST_PREFIX },
      ...(r.gateways.ipv4 ? { gateway: r.gateways.ipv4 } : {}),
      ...(r.gateways.ipv6 ? { gatewayIPv6: r.gateways.ipv6 } : {}),
    };
  }

  async leave(input: EndpointRef): Promise<void> {
    await this.opts.driver.leave(input.networkId, input.endpointId);
  }

  async programExternalConnectivity(input: ProgramExternalConnectivityInput, ctx: RequestContext): Promise<void> {
    if (input.options.portMappings.length === 0) return;
    const bindings = await this.opts.driver.publish(input.networkId, input.endpointId, portRequests(input.options.portMappings));
    ctx.log.info({ requestId: ctx.requestId, endpoint: input.endpointId, bindings }, 'ports published');
  }

  async revokeExternalConnectivity(input: EndpointRef): Promise<void> {
    await this.opts.driver.unpublish(input.networkId, input.endpointId);
  }
}
