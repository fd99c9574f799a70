// Shared set-up for the ops tests: a temp SQLite store holding records written the way the drivers
// and the IPAM write them, and helpers to read Prometheus text and SSE streams.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam, ownerForCni } from '../../ipam/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../../plugins/drivers/common/records.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';

export interface TempStore {
  dir: string;
  url: string;
  store: Store;
  cleanup(): Promise<void>;
}

export async function tempStore(): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tso-ops-'));
  const url = `sqlite://${join(dir, 'store.db')}`;
  const store = await openStore(url);
  return {
    dir,
    url,
    store,
    cleanup: async () => {
      await store.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const now = () => new Date().toISOString();

export function network(id: string, name: string, subnet: string, extra: Partial<NetworkRecord> = {}): NetworkRecord {
  const gw = subnet.replace(/\.0\/\d+$/, '.1');
  return {
    id, name, driver: 'bridge', scope: 'local', hostId: 'h1', subnets: [subnet], gateways: [gw], bridge: `tsbr-${id}`.slice(0, 15),
    internal: false, icc: true, masquerade: true, ipv6: false, options: {}, createdAt: now(), ...extra,
  };
}

export function endpoint(id: string, networkId: string, address: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id, networkId, hostId: 'h1', driver: 'bridge', containerId: `c-${id}`, names: [id], aliases: [], addresses: [address],
    mac: '02:42:0a:00:00:02', ports: [], exposed: [], sandbox: { mode: 'netns', netnsPath: '/run/netns/x', joinedAt: now() }, createdAt: now(), ...extra,
  };
}

/**
 * Write what a small cluster looks like: hosts h1 (alive, leased) and h2 (a record without a
 * lease), network web (10.77.0.0/24, 3 endpoints, one with a published port) and db
 * (10.78.0.0/24 with range 10.78.0.16/28, 1 endpoint), addresses taken from the IPAM.
 */
export async function seedCluster(store: Store): Promise<{ webPool: string; dbPool: string; lease: { revoke(): Promise<void> } }> {
  const lease = await store.lease(60);
  await store.put(keys.host('h1'), JSON.stringify({ id: 'h1', advertise: '127.0.0.1', version: '0.1.0', pid: 1, startedAt: now() }), { lease: lease.id });
  await store.put(keys.host('h2'), JSON.stringify({ id: 'h2', advertise: null, version: '0.1.0', pid: 2, startedAt: now() }));
  const ipam = new Ipam(store, { hostId: 'h1' });
  const web = await ipam.requestPool({ space: 'local', cidr: '10.77.0.0/24', ref: 'net-web' });
  const db = await ipam.requestPool({ space: 'local', cidr: '10.78.0.0/24', range: '10.78.0.16/28', ref: 'net-db' });
  await ipam.requestAddress(web.poolId, { kind: 'gateway' });
  await ipam.requestAddress(db.poolId, { kind: 'gateway' });
  const recs = new RecordStore(store);
  await recs.createNetwork(network('net-web', 'web', '10.77.0.0/24'));
  await recs.createNetwork(network('net-db', 'db', '10.78.0.0/24'));
  for (const name of ['web1', 'web2', 'web3']) {
    const a = await ipam.requestAddress(web.poolId, { owner: ownerForCni('web', name, 'eth0') });
    const ports = name === 'web1' ? [{ proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8080, containerIp: a.address, containerPort: 80 }] : [];
    await recs.createEndpoint(endpoint(name, 'net-web', `${a.address}/24`, { ports }));
  }
  const d = await ipam.requestAddress(db.poolId, { owner: ownerForCni('db', 'db1', 'eth0') });
  await ipam.requestAddress(db.poolId, { owner: ownerForCni('db', 'spare', 'eth0') });
  await recs.createEndpoint(endpoint('db1', 'net-db', `${d.address}/24`));
  return { webPool: web.poolId, dbPool: db.poolId, lease };
}

/** The value of one sample in Prometheus text, matching every given label; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}
