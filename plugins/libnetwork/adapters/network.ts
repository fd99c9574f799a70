// The Docker remote network driver `tsbridge`: NetworkDriverBackend over the front-end-neutral
// bridge driver. State is in the store, so a restarted daemon (which the engine does not
// re-activate) carries on where the previous one stopped. Off the engine's critical path: the
// veth is made while the engine builds the sandbox (after CreateEndpoint), and Leave and
// DeleteEndpoint are answered before their kernel work is done.
import type { BridgeDriver, JoinResult as BridgeJoinResult } from '../../drivers/bridge/bridge.js';
import { isDriverError } from '../../drivers/common/errors.js';
import type {
  CreateEndpointInput,
  CreateEndpointResult,
  CreateNetworkInput,
  DriverCapabilities,
  EndpointRef,
  Logger,
  JoinInput,
  JoinResult,
  NetworkDriverBackend,
  ProgramExternalConnectivityInput,
  RequestContext,
} from '../backend.js';
import { PluginError } from '../errors.js';
import { EndpointTasks } from './deferred.js';
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
  /** Log for background work (per-call logs use the request's). */
  log: Logger;
  /** Prepare joins and defer teardown (default true); false: every call does its work inline. */
  deferred?: boolean;
}

/** The interface name prefix inside the container: eth0, eth1, … as with Docker's bridge. */
export const DST_PREFIX = 'eth';

export class DockerBridgeNetwork implements NetworkDriverBackend {
  readonly capabilities: DriverCapabilities = { scope: 'local', connectivityScope: 'local' };
  private readonly name: string;
  private readonly tasks: EndpointTasks<BridgeJoinResult>;
  private readonly deferred: boolean;

  constructor(private readonly opts: DockerBridgeOptions) {
    this.name = opts.name ?? 'tsbridge';
    this.tasks = new EndpointTasks(opts.log);
    this.deferred = opts.deferred ?? true;
  }

  /** Wait for background work (the daemon's stop). */
  drain(): Promise<void> {
    return this.tasks.drain();
  }

  async createNetwork(input: CreateNetworkInput, ctx: RequestContext): Promise<void> {
    if (input.ipv4.length === 0 && input.ipv6.length === 0) {
      throw new PluginError('no-subnet', 'bad-request', `${this.name} networks need a subnet (the IPAM driver gave none)`);
    }
    const rec = await this.opts.driver.createNetwork(bridgeNetworkInput(input, this.name));
    ctx.log.info({ requestId: ctx.requestId, network: input.networkId, bridge: rec.bridge }, 'network created');
  }

  async deleteNetwork(input: { networkId: string }): Promise<void> {
    await this.tasks.drain(input.networkId);
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
    // Last, so that a failure above (after which the engine sends no DeleteEndpoint) made no veth.
    if (this.deferred) this.tasks.prepare(input.networkId, input.endpointId, () => this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' }));
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

  /**
   * Answered once the endpoint's record is gone (after a deferred Leave's teardown, in order): a
   * daemon killed after the answer leaves nothing to collect. A failure is logged and answered as
   * success, as before — the engine forgets the endpoint either way; reconcile and GC take the rest.
   */
  async deleteEndpoint(input: EndpointRef): Promise<void> {
    const run = () => this.opts.driver.deleteEndpoint(input.networkId, input.endpointId);
    if (this.deferred) await this.tasks.later(input.networkId, input.endpointId, 'DeleteEndpoint', run);
    else await run();
  }

  async join(input: JoinInput, ctx: RequestContext): Promise<JoinResult> {
    let r: BridgeJoinResult | undefined;
    const prepared = this.tasks.take(input.endpointId);
    if (prepared) {
      r = await prepared.catch((err: unknown) => {
        ctx.log.warn({ requestId: ctx.requestId, endpoint: input.endpointId, err: (err as Error).message }, 'prepared join failed; joining again');
        return undefined;
      });
    }
    r ??= await this.joinNow(input, ctx);
    this.opts.onJoined?.({ networkId: input.networkId, endpointId: input.endpointId });
    return {
      interfaceName: { srcName: r.srcName!, dstPrefix: DST_PREFIX },
      ...(r.gateways.ipv4 ? { gateway: r.gateways.ipv4 } : {}),
      ...(r.gateways.ipv6 ? { gatewayIPv6: r.gateways.ipv6 } : {}),
    };
  }

  private async joinNow(input: JoinInput, ctx: RequestContext): Promise<BridgeJoinResult> {
    try {
      return await this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' });
    } catch (err) {
      if (!isDriverError(err, 'endpoint-joined')) throw err;
      // The engine joins an endpoint once; a second Join means our first reply was lost (a
      // restart between the kernel work and the answer), so the peer was never moved: redo it.
      ctx.log.warn({ requestId: ctx.requestId, endpoint: input.endpointId }, 'Join for a joined endpoint: re-creating its interface');
      await this.opts.driver.leave(input.networkId, input.endpointId);
      return this.opts.driver.join(input.networkId, input.endpointId, { mode: 'engine' });
    }
  }

  async leave(input: EndpointRef): Promise<void> {
    const run = () => this.opts.driver.leave(input.networkId, input.endpointId);
    if (this.deferred) this.tasks.later(input.networkId, input.endpointId, 'Leave', run);
    else await run();
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
