// netlink/: the typed kernel layer every driver uses (links, addresses, routes, neighbours, FDB, sysctl),
// any namespace by path through one entry. Built on iproute2 (`-json` reads, `-batch -` writes).
export { Kernel, NetnsHandle, type KernelOptions, type EnsurableLinkSpec, type EnsureResult } from './kernel.js';
export { LinkWatch, type LinkWatchOptions } from './link-watch.js';
export { Batch, type Command } from './batch.js';
export { NetnsRunner, detectTools, type ToolPaths, type Tool } from './runner.js';
export {
  KernelError,
  classify,
  ignoreNotFound,
  invalid,
  isExists,
  isNotFound,
  type ErrorKind,
  type KernelErrorDetails,
} from './errors.js';
export {
  assertToken,
  confSysctlKey,
  formatCidr,
  parseCidr,
  validateGroup,
  validateIfName,
  validateInt,
  validateIp,
  validateMac,
  validateNetnsPath,
  validateSysctlKey,
  validateSysctlValue,
  validateTable,
  type Cidr,
  type Family,
} from './validate.js';
export { parseAddresses, parseFdb, parseLinks, parseNeighbours, parseRoutes } from './parse.js';
export type * from './types.js';
