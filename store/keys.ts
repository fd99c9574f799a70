// Every key tsoverlay writes is built here, under one prefix (/tsoverlay/v1/).
// Pure functions, no I/O: name <-> key mapping only. Segments are validated and
// escaped so a user-supplied name can never climb or split the key space.

/** The root of all tsoverlay keys (an etcd URL prefix is applied by the backend, on top). */
export const PREFIX = '/tsoverlay/v1/';

/** Thrown when a name cannot become a key segment. */
export class KeyError extends Error {
  readonly code = 'invalid-key';
  readonly kind = 'bad-request';
  readonly retryable = false;
}

// Characters kept as-is in a segment; everything else is %XX-escaped (so "/" in a
// CIDR becomes "%2F" and keys stay one segment per name).
const SAFE = /^[A-Za-z0-9._:@=+-]$/;
const MAX_SEGMENT = 255;

/** Escape one name into a key segment. Empty, "." and ".." are refused. */
export function segment(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new KeyError(`empty key segment`);
  if (name.length > MAX_SEGMENT) throw new KeyError(`key segment longer than ${MAX_SEGMENT}: "${name.slice(0, 40)}…"`);
  if (name === '.' || name === '..') throw new KeyError(`key segment "${name}" is not allowed`);
  // A lone surrogate has no UTF-8 form: encoded as U+FFFD it would share a key with other names.
  if (/\p{Cs}/u.test(name)) throw new KeyError(`key segment ${JSON.stringify(name.slice(0, 40))} is not valid Unicode (lone surrogate)`);
  let out = '';
  for (const ch of name) {
    if (SAFE.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of segment(). */
export function unsegment(seg: string): string {
  return decodeURIComponent(seg);
}

function key(...parts: string[]): string {
  return PREFIX + parts.map(segment).join('/');
}

function dir(...parts: string[]): string {
  return PREFIX + parts.map((p) => `${segment(p)}/`).join('');
}

/** Split a key built here into its decoded segments (without the prefix). */
export function parseKey(k: string): string[] {
  if (!k.startsWith(PREFIX)) throw new KeyError(`not a tsoverlay key: ${k}`);
  return k.slice(PREFIX.length).split('/').map(unsegment);
}

/** The last decoded segment of a key. */
export function lastSegment(k: string): string {
  const parts = parseKey(k);
  return parts[parts.length - 1]!;
}

export const keys = {
  // Hosts: one record per daemon, attached to its liveness lease.
  hosts: () => dir('hosts'),
  host: (hostId: string) => key('hosts', hostId),

  // Networks (Docker network ID or CNI network name) and their endpoints.
  networks: () => dir('networks'),
  network: (networkId: string) => key('networks', networkId),
  networkNames: () => dir('network-names'),
  networkName: (name: string) => key('network-names', name),
  endpoints: () => dir('endpoints'),
  networkEndpoints: (networkId: string) => dir('endpoints', networkId),
  endpoint: (networkId: string, endpointId: string) => key('endpoints', networkId, endpointId),

  // Overlay VNIs, allocated cluster-wide (create-if-absent).
  vnis: () => dir('vnis'),
  vni: (vni: number) => key('vnis', String(vni)),

  // IPAM: pools per address space, host-affine blocks, one key per allocated address.
  ipamPools: () => dir('ipam', 'pools'),
  ipamPool: (poolId: string) => key('ipam', 'pools', poolId),
  ipamPoolRefs: (poolId: string) => dir('ipam', 'pool-refs', poolId),
  ipamPoolRef: (poolId: string, ref: string) => key('ipam', 'pool-refs', poolId, ref),
  ipamBlocks: (poolId: string) => dir('ipam', 'blocks', poolId),
  ipamBlock: (poolId: string, blockCidr: string) => key('ipam', 'blocks', poolId, blockCidr),
  ipamAllBlocks: () => dir('ipam', 'blocks'),
  ipamAddresses: (poolId: string) => dir('ipam', 'addresses', poolId),
  ipamAddress: (poolId: string, address: string) => key('ipam', 'addresses', poolId, address),
  ipamAllAddresses: () => dir('ipam', 'addresses'),
  // The IPAM stores each address under its block, so one host's block is read with one range.
  ipamBlockAddresses: (poolId: string, blockCidr: string) => dir('ipam', 'addresses', poolId, blockCidr),
  ipamBlockAddress: (poolId: string, blockCidr: string, address: string) => key('ipam', 'addresses', poolId, blockCidr, address),
  // One record per address space listing its pools: pool create/delete CAS on it (atomic overlap checks).
  ipamSpace: (space: string) => key('ipam', 'spaces', space),
  ipamOwners: () => dir('ipam', 'owners'),
  ipamOwner: (owner: string, poolId: string) => key('ipam', 'owners', owner, poolId),
  ipamOwnerPools: (owner: string) => dir('ipam', 'owners', owner),
  ipamCursors: (poolId: string) => dir('ipam', 'cursors', poolId),
  ipamCursor: (poolId: string, hostId: string) => key('ipam', 'cursors', poolId, hostId),

  // Proxy: services with VIPs and backends, links between endpoints, host-port reservations.
  services: () => dir('services'),
  service: (name: string) => key('services', name),
  links: () => dir('links'),
  networkLinks: (networkId: string) => dir('links', networkId),
  link: (networkId: string, fromEndpoint: string, toEndpoint: string) => key('links', networkId, fromEndpoint, toEndpoint),
  hostPorts: (hostId: string) => dir('host-ports', hostId),
  hostPort: (hostId: string, proto: string, hostIp: string, port: number) =>
    key('host-ports', hostId, proto, hostIp, String(port)),

  // `tsoverlay doctor`'s write/read/delete round trip (one short-lived key per run).
  doctorProbe: (id: string) => key('doctor', id),

  // CNI attachments (container + ifname + network), for GC and CHECK.
  cniAttachments: () => dir('cni'),
  cniNetworkAttachments: (network: string) => dir('cni', network),
  cniAttachment: (network: string, containerId: string, ifname: string) => key('cni', network, containerId, ifname),
} as const;

/**
 * SkyDNS records (the CoreDNS etcd plugin layout) live outside PREFIX because other tools write
 * them: a.b.example is /skydns/example/b/a. tsoverlay only reads them (the standalone DNS).
 */
export const SKYDNS_PREFIX = '/skydns/';

/** The SkyDNS key of a DNS name ("rails.east.skydns.local" → "/skydns/local/skydns/east/rails"). */
export function skydnsKey(name: string): string {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.');
  if (labels.some((l) => l.length === 0 || l.length > 63 || l.includes('/'))) throw new KeyError(`not a DNS name: "${name}"`);
  return SKYDNS_PREFIX + labels.reverse().join('/');
}

/** The DNS name of a SkyDNS key (labels lowercased), or undefined when it is not one. */
export function skydnsName(k: string): string | undefined {
  if (!k.startsWith(SKYDNS_PREFIX)) return undefined;
  const labels = k.slice(SKYDNS_PREFIX.length).split('/').filter((l) => l.length > 0);
  if (labels.length === 0) return undefined;
  return labels.reverse().join('.').toLowerCase();
}
