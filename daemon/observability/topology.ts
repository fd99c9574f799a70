// One read of what the cluster looks like, from the store only: hosts (alive while their lease
// lasts), networks and endpoints with addresses and published ports. Served as /api/topology and
// shared by the scrape-time gauges. A record that cannot be decoded is skipped and counted.
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../../plugins/drivers/common/records.js';
import { keys, lastSegment } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

export interface TopologyHost {
  id: string;
  /** VTEP / advertise address; null when the host works alone. */
  advertise: string | null;
  /** True while the host's record is attached to a lease (its daemon keeps it alive). */
  alive: boolean;
  version: string | null;
  startedAt: string | null;
}

export interface TopologyPort {
  proto: string;
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface TopologyEndpoint {
  id: string;
  networkId: string;
  hostId: string;
  driver: string;
  containerId: string | null;
  names: string[];
  aliases: string[];
  addresses: string[];
  mac: string | null;
  ports: TopologyPort[];
  joined: boolean;
}

export interface TopologyNetwork {
  id: string;
  name: string | null;
  driver: string;
  scope: 'local' | 'global';
  hostId: string | null;
  subnets: string[];
  gateways: string[];
  mtu: number | null;
  vni: number | null;
  internal: boolean;
}

export interface Topology {
  /** Store revision the hosts were read at (a watch from revision + 1 misses nothing later). */
  revision: number;
  generatedAt: string;
  hosts: TopologyHost[];
  networks: TopologyNetwork[];
  endpoints: TopologyEndpoint[];
  /** Keys whose value could not be decoded (skipped). */
  corrupt: string[];
}

interface HostValue {
  id?: unknown;
  advertise?: unknown;
  version?: unknown;
  startedAt?: unknown;
}

const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function hostOf(key: string, value: string, leased: boolean): TopologyHost {
  let v: HostValue = {};
  try {
    const parsed = JSON.parse(value) as unknown;
    if (parsed && typeof parsed === 'object') v = parsed as HostValue;
  } catch {
    // A host record is informational here: show the id from the key, nothing else.
  }
  return {
    id: typeof v.id === 'string' ? v.id : lastSegment(key),
    advertise: strOrNull(v.advertise),
    alive: leased,
    version: strOrNull(v.version),
    startedAt: strOrNull(v.startedAt),
  };
}

function networkOf(n: NetworkRecord): TopologyNetwork {
  return {
    id: n.id,
    name: n.name ?? null,
    driver: n.driver,
    scope: n.scope,
    hostId: n.hostId ?? null,
    subnets: n.subnets,
    gateways: n.gateways,
    mtu: n.mtu ?? null,
    vni: n.vni ?? null,
    internal: n.internal,
  };
}

function endpointOf(e: EndpointRecord): TopologyEndpoint {
  return {
    id: e.id,
    networkId: e.networkId,
    hostId: e.hostId,
    driver: e.driver,
    containerId: e.containerId ?? null,
    names: e.names,
    aliases: e.aliases,
    addresses: e.addresses,
    mac: e.mac ?? null,
    ports: e.ports.map((p) => ({ proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, containerIp: p.containerIp, containerPort: p.containerPort })),
    joined: e.sandbox !== undefined,
  };
}

/** Read hosts, networks and endpoints (three ranges; not one snapshot across them). */
export async function readTopology(store: Store): Promise<Topology> {
  const corrupt: string[] = [];
  const records = new RecordStore(store, (key) => corrupt.push(key));
  const [hostsRange, networks, endpoints] = await Promise.all([store.range(keys.hosts()), records.listNetworks(), records.listAllEndpoints()]);
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    revision: hostsRange.revision,
    generatedAt: new Date().toISOString(),
    hosts: hostsRange.kvs.map((kv) => hostOf(kv.key, kv.value, kv.lease !== undefined)).sort(byId),
    networks: networks.map(networkOf).sort(byId),
    endpoints: endpoints.map(endpointOf).sort(byId),
    corrupt,
  };
}
