// tshost's verbs over the host driver: the attachment is recorded (names, aliases, the host's
// addresses for DNS) and its `portMappings` host ports reserved, so published ports and DNS see
// it; nothing is created in the container namespace. The result adds nothing to prevResult:
// listing the host's addresses as the container's would make runtimes configure or report them.
import { HostDriver } from '../drivers/host/host.js';
import { HostPortAllocator } from '../../proxy/allocator.js';
import type { Store } from '../../store/types.js';
import { bridgeEndpointId } from './bridge-conf.js';
import { confString, DEFAULT_STORE_URL, withStore, type CniContext } from './context.js';
import { CniError, ErrorCode } from './errors.js';
import type { CniRequest, PluginHandlers } from './skel.js';

/** The host driver's network id for a CNI network on a host. */
export function hostNetworkId(network: string, hostId: string): string {
  return `cni:${hostId}:${network}`;
}

/** The tshost verbs with their dependencies. */
export class TshostHandlers implements PluginHandlers {
  constructor(private readonly ctx: CniContext) {}

  private storeUrl(req: CniRequest): string {
    return confString(req.conf as unknown as Record<string, unknown>, 'store') ?? DEFAULT_STORE_URL;
  }

  private async driver(store: Store): Promise<HostDriver> {
    return new HostDriver({ store, hostId: this.ctx.hostId, kernel: await this.ctx.kernel(), ports: new HostPortAllocator({ hostId: this.ctx.hostId, store }) });
  }

  private ids(req: CniRequest) {
    return { networkId: hostNetworkId(req.conf.name, this.ctx.hostId), endpointId: bridgeEndpointId(req.env.containerId, req.env.ifname) };
  }

  /** The container's ports on the host's stack: runtimeConfig.portMappings' host ports. */
  private exposed(req: CniRequest) {
    return [...new Map(req.options.portMappings.map((m) => [`${m.protocol}/${m.hostPort}`, { proto: m.protocol, port: m.hostPort }])).values()];
  }

  async add(req: CniRequest): Promise<undefined> {
    const { networkId, endpointId } = this.ids(req);
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      const drv = await this.driver(store);
      await drv.createNetwork({ id: networkId, name: req.conf.name });
      const input = {
        id: endpointId,
        containerId: req.env.containerId,
        ...(req.options.k8s.name ? { names: [req.options.k8s.name] } : {}),
        aliases: req.options.aliases,
        exposed: this.exposed(req),
      };
      await drv.createEndpoint(networkId, input);
      let done = false;
      try {
        await drv.join(networkId, endpointId);
        done = true;
      } finally {
        if (!done) await drv.deleteEndpoint(networkId, endpointId).catch(() => undefined);
      }
    });
    return undefined;
  }

  /** DEL: the record and its reservations go; missing = done. */
  async del(req: CniRequest): Promise<void> {
    const { networkId, endpointId } = this.ids(req);
    await withStore(this.ctx, this.storeUrl(req), async (store) => (await this.driver(store)).deleteEndpoint(networkId, endpointId));
  }

  /** CHECK: the attachment is recorded, joined, with the ports asked for. */
  async check(req: CniRequest): Promise<void> {
    const { networkId, endpointId } = this.ids(req);
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      const ep = await (await this.driver(store)).endpoint(networkId, endpointId);
      if (!ep?.sandbox) throw new CniError(ErrorCode.UnknownContainer, `tshost CHECK: no attachment of container ${req.env.containerId} (${req.env.ifname}) on network ${req.conf.name}`);
      const want = JSON.stringify(this.exposed(req));
      if (JSON.stringify(ep.exposed) !== want) throw new CniError(ErrorCode.Internal, `tshost CHECK: recorded ports ${JSON.stringify(ep.exposed)} differ from ${want}`);
    });
  }

  async status(req: CniRequest): Promise<void> {
    const url = this.storeUrl(req);
    try {
      await withStore(this.ctx, url, (s) => s.revision());
    } catch (err) {
      if ((err as { kind?: unknown }).kind === 'bad-request') throw err;
      throw new CniError(ErrorCode.PluginNotAvailable, `tshost: store ${url} is unreachable`, (err as Error).message);
    }
  }

  /** GC: this network's endpoints on this host that the runtime no longer lists. */
  async gc(req: CniRequest): Promise<void> {
    const valid = new Set(req.validAttachments.map((a) => bridgeEndpointId(a.containerID, a.ifname)));
    const networkId = hostNetworkId(req.conf.name, this.ctx.hostId);
    await withStore(this.ctx, this.storeUrl(req), async (store) => {
      const drv = await this.driver(store);
      const { RecordStore } = await import('../drivers/common/record-store.js');
      for (const ep of await new RecordStore(store).listEndpoints(networkId)) {
        if (ep.hostId === this.ctx.hostId && !valid.has(ep.id)) await drv.deleteEndpoint(networkId, ep.id);
      }
    });
  }
}

/** tshost's handlers for a context. */
export function createTshostHandlers(ctx: CniContext): PluginHandlers {
  return new TshostHandlers(ctx);
}
