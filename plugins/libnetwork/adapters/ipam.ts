// The Docker remote IPAM driver (`tsipam`) over the store-backed Ipam: pools, gateways, aux and
// `--ip` addresses. Limits: Docker's RequestAddress carries no endpoint id, so addresses start
// without an owner; the network adapter records the owner at CreateEndpoint (see gc notes in README).
import { randomUUID } from 'node:crypto';
import type { Ipam } from '../../../ipam/index.js';
import { isIpamError } from '../../../ipam/index.js';
import type {
  IpamBackend,
  IpamCapabilities,
  RequestAddressInput,
  RequestAddressResult,
  RequestContext,
  RequestPoolInput,
  RequestPoolResult,
} from '../backend.js';
import { badOption } from '../errors.js';

export interface DockerIpamOptions {
  ipam: Ipam;
  /** This host's id: pool refs taken through this engine are `docker:<hostId>:<uuid>`. */
  hostId: string;
}

/** The address spaces GetDefaultAddressSpaces names (the Ipam's own). */
export const DOCKER_SPACES = Object.freeze({ local: 'local', global: 'global' });

/** The pool ref prefix of one host's Docker engine. */
export function dockerPoolRefPrefix(hostId: string): string {
  return `docker:${hostId}:`;
}

/**
 * IpamBackend over Ipam. Every RequestPool takes its own ref on the pool (so two requests for
 * one subnet — from two hosts, or a second network of this host that the driver then refuses —
 * are counted), and ReleasePool drops the newest ref of this host: the engine's rollback of a
 * failed network create never frees a pool another network still uses.
 */
export class DockerIpam implements IpamBackend {
  /** See IpamCapabilities: no MAC needed (drivers derive one), no replay (state is in the store). */
  readonly capabilities: IpamCapabilities = { requiresMacAddress: false, requiresRequestReplay: false };
  private readonly refPrefix: string;

  constructor(private readonly opts: DockerIpamOptions) {
    this.refPrefix = dockerPoolRefPrefix(opts.hostId);
  }

  async getDefaultAddressSpaces(): Promise<{ local: string; global: string }> {
    return { ...DOCKER_SPACES };
  }

  async requestPool(input: RequestPoolInput, ctx: RequestContext): Promise<RequestPoolResult> {
    // `--ipam-opt` keys we do not know are refused rather than silently ignored.
    const [unknown] = Object.keys(input.options.extra);
    if (unknown !== undefined) throw badOption(unknown, input.options.extra[unknown], 'not an option of the tsipam driver (it has none)');
    const pool = await this.opts.ipam.requestPool({
      // The Ipam validates the space name (unknown-address-space names the value).
      space: input.addressSpace as 'local' | 'global',
      ...(input.pool !== undefined ? { cidr: input.pool } : {}),
      ...(input.subPool !== undefined ? { range: input.subPool } : {}),
      v6: input.v6,
      ref: this.refPrefix + randomUUID(),
    });
    ctx.log.info({ requestId: ctx.requestId, poolId: pool.poolId, refs: pool.refs.length, auto: pool.auto }, 'pool requested');
    return { poolId: pool.poolId, pool: pool.cidr };
  }

  async releasePool(input: { poolId: string }, ctx: RequestContext): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const pool = await this.opts.ipam.getPool(input.poolId); // unknown-pool = not-found = success
      const mine = pool.refs.filter((r) => r.startsWith(this.refPrefix));
      const ref = mine[mine.length - 1];
      if (ref === undefined) {
        ctx.log.warn({ requestId: ctx.requestId, poolId: input.poolId }, 'ReleasePool for a pool this host holds no ref on: left alone');
        return;
      }
      const gone = await this.opts.ipam.releasePool(input.poolId, ref);
      if (gone) return;
      // false: either other refs remain (done), or a concurrent release took this ref first.
      const after = await this.opts.ipam.getPool(input.poolId).catch(() => undefined);
      if (!after || !after.refs.includes(ref)) return;
    }
  }

  async requestAddress(input: RequestAddressInput, ctx: RequestContext): Promise<RequestAddressResult> {
    const gateway = input.options.type === 'gateway';
    // Aux addresses (`--aux-address`) and `--ip` both arrive without options on dockerd 20.10;
    // both are taken as 'endpoint' allocations without an owner (a taken address is refused).
    const r = await this.opts.ipam.requestAddress(input.poolId, {
      kind: gateway ? 'gateway' : 'endpoint',
      ...(input.address !== undefined ? { address: input.address } : {}),
    });
    ctx.log.debug({ requestId: ctx.requestId, poolId: input.poolId, address: r.address, kind: r.kind }, 'address allocated');
    return { address: `${r.address}/${r.prefixLength}` };
  }

  async releaseAddress(input: { poolId: string; address: string }, ctx: RequestContext): Promise<void> {
    // The gateway of a pool others still hold (other hosts, CNI) stays allocated: they use it too.
    const pool = await this.opts.ipam.getPool(input.poolId);
    if (pool.gateway === input.address && pool.refs.length > 1) {
      ctx.log.info({ requestId: ctx.requestId, poolId: input.poolId, address: input.address }, 'gateway kept: the pool has other holders');
      return;
    }
    try {
      await this.opts.ipam.releaseAddress(input.poolId, input.address);
    } catch (err) {
      // An address outside the pool was never ours to free.
      if (isIpamError(err, 'address-outside-pool')) return;
      throw err;
    }
  }
}
