// The Docker remote network driver `tshost`: NetworkDriverBackend over the records-only host
// driver. A remote driver cannot put a container on the host's stack; what dockerd 20.10 does
// allow (checked against the real engine) is a Join without an interface: with no gateway either,
// the engine attaches the container to its docker_gwbridge (outbound NAT through the host and
// `-p` through the engine's own bridge driver). The endpoint is recorded with the host's
// addresses and exposed ports, so names resolve to the host and host ports stay reserved.
import { HOST_OPTION_KEYS } from '../../drivers/host/config.js';
import type { HostDriver } from '../../drivers/host/host.js';
import type {
  CreateEndpointInput,
  CreateEndpointResult,
  CreateNetworkInput,
  DriverCapabilities,
  EndpointRef,
  JoinInput,
  JoinResult,
  NetworkDriverBackend,
  RequestContext,
} from '../backend.js';
import { badOption } from '../errors.js';

export interface DockerHostOptions {
  driver: HostDriver;
  /** Plugin name, for messages (default "tshost"). */
  name?: string;
  /** Called after a successful Join (e.g. to learn the container's name from the engine). */
  onJoined?: (ref: EndpointRef) => void;
}

const KNOWN: ReadonlySet<string> = new Set(HOST_OPTION_KEYS);

export class DockerHostNetwork implements NetworkDriverBackend {
  readonly capabilities: DriverCapabilities = { scope: 'local', connectivityScope: 'local' };
  private readonly name: string;

  constructor(private readonly opts: DockerHostOptions) {
    this.name = opts.name ?? 'tshost';
  }

  async createNetwork(input: CreateNetworkInput, ctx: RequestContext): Promise<void> {
    const o = input.options;
    // Options that only mean something for an interface of the container's own are refused.
    const why = `not supported by ${this.name}: its containers use no interface of this network`;
    if (o.internal) throw badOption('com.docker.network.internal', true, `${why} (an internal host network would leave them without any network)`);
    if (o.mtu !== undefined) throw badOption('com.docker.network.driver.mtu', o.mtu, why);
    if (o.containerIfacePrefix !== undefined) throw badOption('com.docker.network.container_iface_prefix', o.containerIfacePrefix, why);
    const [bridgeKey] = Object.keys(o.bridge);
    if (bridgeKey !== undefined) throw badOption(`com.docker.network.bridge.*`, bridgeKey, why);
    const options: Record<string, string> = {};
    for (const [key, value] of Object.entries(o.driverOpts)) {
      if (!KNOWN.has(key)) throw badOption(key, value, `not an option of the ${this.name} driver (known: ${[...KNOWN].join(', ')})`);
      options[key] = value;
    }
    await this.opts.driver.createNetwork({ id: input.networkId, options });
    ctx.log.info({ requestId: ctx.requestId, network: input.networkId }, 'host network created');
  }

  async deleteNetwork(input: { networkId: string }): Promise<void> {
    await this.opts.driver.deleteNetwork(input.networkId);
  }

  async createEndpoint(input: CreateEndpointInput): Promise<CreateEndpointResult> {
    // The IPAM's address (if any) is left unused: `--ipam-driver null` avoids taking one.
    await this.opts.driver.createEndpoint(input.networkId, {
      id: input.endpointId,
      exposed: input.options.exposedPorts.map((p) => ({ proto: p.proto, port: p.port })),
    });
    return {};
  }

  async endpointOperInfo(input: EndpointRef): Promise<Record<string, unknown>> {
    const ep = await this.opts.driver.endpoint(input.networkId, input.endpointId);
    return ep ? { hostAddresses: ep.addresses } : {};
  }

  async deleteEndpoint(input: EndpointRef): Promise<void> {
    await this.opts.driver.deleteEndpoint(input.networkId, input.endpointId);
  }

  /** No interface and no gateway: the engine gives the container its docker_gwbridge attachment. */
  async join(input: JoinInput): Promise<JoinResult> {
    await this.opts.driver.join(input.networkId, input.endpointId);
    this.opts.onJoined?.({ networkId: input.networkId, endpointId: input.endpointId });
    return {};
  }

  async leave(input: EndpointRef): Promise<void> {
    await this.opts.driver.leave(input.networkId, input.endpointId);
  }

  /** Never called for our endpoints (the gwbridge endpoint is the gateway one); nothing to do. */
  async programExternalConnectivity(): Promise<void> {}

  async revokeExternalConnectivity(): Promise<void> {}
}
