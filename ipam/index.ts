// The ipam package's public surface (front ends import from here).
export { Ipam, type IpamOptions, type AddressRequest, type AddressResult } from './ipam.js';
export { IpamError, isIpamError, type IpamErrorCode } from './errors.js';
export type { PoolInfo, PoolRequest } from './pools.js';
export type { GcOptions } from './reclaim.js';
export { ownerForDocker, ownerForCni, parseOwner, type Allocation, type AllocationKind } from './records.js';
export { dockerDefaultPools, type DefaultPool, type DefaultPools } from './auto-pool.js';
export type { AddressSpace } from './pool.js';
export * as cidr from './cidr.js';
