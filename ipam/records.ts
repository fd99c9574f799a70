// The JSON records the IPAM keeps in the store, owner-string helpers, and the small
// compare builders every IPAM transaction is made of. Pure; no I/O.
import type { Compare, KeyValue } from '../store/types.js';
import { IpamError } from './errors.js';

/** Why an address is held: an endpoint, a network's gateway, or a Docker aux/reserved address. */
export type AllocationKind = 'endpoint' | 'gateway' | 'aux';

/** keys.ipamBlockAddress(pool, block, address): the truth about one address. */
export interface AddressRecord {
  address: string;
  pool: string;
  block: string;
  owner: string | null;
  host: string;
  /** ISO time of the allocation. */
  time: string;
  kind: AllocationKind;
  /** Unique per request: lets a retried (possibly already applied) write recognise itself. */
  req: string;
}

/** keys.ipamOwner(owner, pool): an index from owner to its address in a pool. */
export interface OwnerRecord {
  address: string;
  block: string;
  req: string;
}

/** keys.ipamBlock(pool, block): the host the block is affine to. */
export interface BlockRecord {
  host: string;
  time: string;
}

/** keys.ipamSpace(space): the pools of an address space (id → cidr, auto flag). */
export interface SpaceRecord {
  pools: Record<string, { cidr: string; auto: boolean }>;
}

/** One allocation as callers see it. */
export interface Allocation {
  address: string;
  poolId: string;
  owner: string | null;
  host: string;
  time: string;
  kind: AllocationKind;
}

/** Parse a stored JSON record; a corrupt value is an internal error naming the key. */
export function decode<T>(kv: KeyValue): T {
  try {
    return JSON.parse(kv.value) as T;
  } catch (err) {
    throw Object.assign(new Error(`corrupt IPAM record at ${kv.key}: ${(err as Error).message}`), {
      code: 'corrupt-record',
      kind: 'internal',
      retryable: false,
    });
  }
}

/** The public view of a stored address record. */
export function toAllocation(r: AddressRecord): Allocation {
  return { address: r.address, poolId: r.pool, owner: r.owner, host: r.host, time: r.time, kind: r.kind };
}

/** Compare: the key does not exist. */
export function absent(key: string): Compare {
  return { key, target: 'createRevision', op: '==', value: 0 };
}

/** Compare: the key is the same incarnation (created at rev). */
export function created(key: string, rev: number): Compare {
  return { key, target: 'createRevision', op: '==', value: rev };
}

/** Compare: the key is unchanged since modRevision rev (0 = absent). */
export function unchanged(key: string, rev: number): Compare {
  return { key, target: 'modRevision', op: '==', value: rev };
}

// Owner strings are built by callers through these helpers; the IPAM treats them as opaque.
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IFNAME = /^[^\s/:]{1,15}$/;

/** The owner of a Docker endpoint's address. */
export function ownerForDocker(endpointId: string): string {
  if (typeof endpointId !== 'string' || !NAME.test(endpointId)) {
    throw new IpamError('invalid-owner', `invalid Docker endpoint id ${JSON.stringify(endpointId)}`);
  }
  return `docker:${endpointId}`;
}

/** The owner of a CNI attachment: network name, container id, interface name. */
export function ownerForCni(network: string, containerId: string, ifname: string): string {
  for (const [what, v, re] of [
    ['network name', network, NAME],
    ['container id', containerId, NAME],
    ['interface name', ifname, IFNAME],
  ] as const) {
    if (typeof v !== 'string' || !re.test(v)) throw new IpamError('invalid-owner', `invalid CNI ${what} ${JSON.stringify(v)}`);
  }
  return `cni:${network}:${containerId}:${ifname}`;
}

/** Split an owner built by the helpers above (undefined for any other form). */
export function parseOwner(
  owner: string,
): { type: 'docker'; endpointId: string } | { type: 'cni'; network: string; containerId: string; ifname: string } | undefined {
  const parts = owner.split(':');
  if (parts[0] === 'docker' && parts.length === 2) return { type: 'docker', endpointId: parts[1]! };
  if (parts[0] === 'cni' && parts.length === 4) return { type: 'cni', network: parts[1]!, containerId: parts[2]!, ifname: parts[3]! };
  return undefined;
}

/** Check an owner string given to the IPAM (it becomes a key segment). */
export function checkOwner(owner: unknown): string {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 240 || /[\u0000-\u001f]/.test(owner)) {
    throw new IpamError('invalid-owner', `invalid owner ${JSON.stringify(owner)}: 1-240 printable characters expected`);
  }
  return owner;
}
