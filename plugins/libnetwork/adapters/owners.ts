// Recording which Docker endpoint holds a tsipam address. The engine's RequestAddress names no
// endpoint, so the network adapter, which sees CreateEndpoint (endpoint id + address), does it.
// Networks whose addresses come from another IPAM (Docker's default) have no pool here: no-op.
import { cidr, type Ipam, ownerForDocker } from '../../../ipam/index.js';
import type { Logger } from '../backend.js';

/** Sets the owner of an endpoint's addresses on their tsipam allocations. */
export interface AllocationOwners {
  /** Best effort: a failure is logged, never thrown (the endpoint works without it). */
  record(networkId: string, subnets: readonly string[], addresses: readonly string[], endpointId: string, log: Logger): Promise<void>;
  /** Drop what is cached for a deleted network. */
  forget(networkId: string): void;
}

/** AllocationOwners over the Ipam; a network's pool ids are looked up once per subnet. */
export class IpamOwners implements AllocationOwners {
  /** "networkId subnet" → pool ids with that subnet (a network's pools never change). */
  private readonly pools = new Map<string, Promise<string[]>>();

  constructor(private readonly ipam: Ipam) {}

  async record(networkId: string, subnets: readonly string[], addresses: readonly string[], endpointId: string, log: Logger): Promise<void> {
    const owner = ownerForDocker(endpointId);
    for (const addressCidr of addresses) {
      const address = addressCidr.split('/')[0]!;
      const subnet = subnets.find((s) => inSubnet(s, addressCidr));
      if (!subnet) continue;
      try {
        for (const poolId of await this.poolsOf(networkId, subnet)) {
          if (await this.ipam.setOwner(poolId, address, owner)) break;
        }
      } catch (err) {
        log.warn({ endpoint: endpointId, address, err: (err as Error).message }, 'could not record the owner of an address');
      }
    }
  }

  forget(networkId: string): void {
    for (const k of this.pools.keys()) if (k.startsWith(`${networkId} `)) this.pools.delete(k);
  }

  private poolsOf(networkId: string, subnet: string): Promise<string[]> {
    const key = `${networkId} ${subnet}`;
    let p = this.pools.get(key);
    if (!p) {
      p = this.ipam.listPools().then((all) => all.filter((x) => x.cidr === subnet).map((x) => x.poolId));
      p.catch(() => this.pools.delete(key));
      this.pools.set(key, p);
    }
    return p;
  }
}

/** True when the address of `addressCidr` lies in `subnet`. */
function inSubnet(subnet: string, addressCidr: string): boolean {
  try {
    return cidr.cidrContains(cidr.parseCidr(subnet), cidr.parseAddress(addressCidr.split('/')[0]));
  } catch {
    return false;
  }
}
