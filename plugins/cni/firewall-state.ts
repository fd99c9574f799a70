// A standalone CNI executable's view of the host firewall: the proxy's Firewall is one
// process's desired state, so each executable rebuilds it from the store (this host's bridge
// networks, their published ports, tsportmap's attachments) under a host-wide lock before
// changing anything, and applies the difference to what the kernel shows, through the backend
// the daemon recorded (iptables-save/-restore, or nft's table).
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { configFromRecord } from '../drivers/bridge/config.js';
import { firewallNetwork } from '../drivers/bridge/bridge.js';
import { LinkController } from '../drivers/common/link-controller.js';
import { RecordStore } from '../drivers/common/record-store.js';
import type { EndpointRecord } from '../drivers/common/records.js';
import { HostPortAllocator } from '../../proxy/allocator.js';
import type { BackendKind } from '../../proxy/backend.js';
import { Firewall, type PortBinding } from '../../proxy/firewall.js';
import { ServiceController } from '../../proxy/services.js';
import type { Store } from '../../store/types.js';
import { foreignNetworks, listAttachments } from './attachments.js';

/** Where the host lock lives by default (the daemon's runtime directory). */
export const DEFAULT_LOCK_DIR = '/run/tsoverlay';

/**
 * A host-wide mutex between CNI executables: an exclusive SQLite transaction on a lock
 * file named after this network namespace. The kernel drops it when the process dies, so
 * a killed plugin never leaves it held. Waiting is bounded by `timeoutMs` (then SQLITE_BUSY,
 * which is CNI code 11).
 */
export class HostLock {
  private constructor(private readonly db: Database.Database) {}

  static async acquire(dir = DEFAULT_LOCK_DIR, timeoutMs = 30_000): Promise<HostLock> {
    const { default: Sqlite } = await import('better-sqlite3');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const ns = statSync('/proc/self/ns/net');
    const db = new Sqlite(join(dir, `cni-firewall-${ns.dev}-${ns.ino}.lock`), { timeout: timeoutMs });
    try {
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      throw err;
    }
    return new HostLock(db);
  }

  release(): void {
    try {
      this.db.exec('COMMIT');
    } finally {
      this.db.close();
    }
  }
}

/** Mappings that re-publish recorded bindings exactly (same host addresses and ports). */
export function republishMappings(bindings: readonly PortBinding[]) {
  return bindings.map((b) => ({ proto: b.proto, containerPort: b.containerPort, hostIp: b.hostIp, hostPort: b.hostPort, hostPortEnd: b.hostPort }));
}

function endpointIps(ep: EndpointRecord): { containerIp: string; containerIpv6?: string } {
  const bare = ep.addresses.map((a) => a.split('/')[0]!);
  const v6 = bare.find((a) => a.includes(':'));
  return { containerIp: bare.find((a) => !a.includes(':')) ?? '', ...(v6 ? { containerIpv6: v6 } : {}) };
}

/**
 * Give `fw` this host's whole desired state from the store: bridge networks, the ports their
 * endpoints publish, tsportmap's foreign networks and bindings, links and service VIPs (read
 * once, as the daemon's controllers would apply them). A record the firewall refuses is
 * reported through `warn` and skipped (one bad record must not block every ADD).
 */
export async function preloadFirewall(fw: Firewall, store: Store, hostId: string, warn: (m: string) => void): Promise<void> {
  const records = new RecordStore(store, (key, err) => warn(`skipping unreadable record ${key}: ${err.message}`));
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      warn(`firewall state: skipping ${what}: ${(err as Error).message}`);
    }
  };
  // Overlay networks have a bridge on every member host: their rules share our chains too.
  const nets = (await records.listNetworks()).filter((n) => n.bridge && ((n.driver === 'bridge' && n.hostId === hostId) || n.driver === 'overlay'));
  const bridges = new Set<string>();
  for (const n of nets) {
    await attempt(`network ${n.id}`, () => fw.setNetwork(firewallNetwork(configFromRecord(n))));
    if (n.bridge) bridges.add(n.bridge);
  }
  for (const n of nets) {
    for (const ep of await records.listEndpoints(n.id)) {
      if (ep.hostId !== hostId || ep.ports.length === 0) continue;
      await attempt(`ports of endpoint ${ep.id}`, () => fw.publish(ep.id, { networkId: n.id, ...endpointIps(ep), mappings: republishMappings(ep.ports) }));
    }
  }
  await preloadPortmaps(fw, store, hostId, warn, bridges);
  const onError = (err: unknown, what: string) => warn(`firewall state: skipping ${what}: ${(err as Error).message}`);
  await attempt('links', () => new LinkController({ store, firewall: fw, onError }).load());
  await attempt('services', () => new ServiceController({ store, firewall: fw, onError }).load());
}

/**
 * Give `fw` the ports tsportmap published on this host (and the foreign networks they hang
 * off): the standalone firewall's last step, and the daemon's at start-up, so that its full
 * reconcile keeps those rules. `bridges` are the bridges `fw` already carries a network for
 * (default: this host's bridge networks and every overlay network, from the records).
 */
export async function preloadPortmaps(fw: Firewall, store: Store, hostId: string, warn: (m: string) => void, bridges?: ReadonlySet<string>): Promise<void> {
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      warn(`firewall state: skipping ${what}: ${(err as Error).message}`);
    }
  };
  const atts = (await listAttachments(store)).filter((a) => a.hostId === hostId && a.portmap);
  if (atts.length === 0) return;
  const known = bridges ?? new Set((await new RecordStore(store).listNetworks()).filter((n) => n.bridge && ((n.driver === 'bridge' && n.hostId === hostId) || n.driver === 'overlay')).map((n) => n.bridge!));
  for (const f of foreignNetworks(atts)) {
    if (known.has(f.bridge)) continue;
    await attempt(`network ${f.id}`, () => fw.setNetwork({ id: f.id, bridge: f.bridge, subnets: f.subnets, masquerade: false }));
  }
  for (const a of atts) {
    const p = a.portmap!;
    const spec = { networkId: p.networkId, containerIp: p.containerIp, ...(p.containerIpv6 ? { containerIpv6: p.containerIpv6 } : {}), mappings: republishMappings(p.bindings) };
    await attempt(`ports of ${p.endpointId}`, () => fw.publish(p.endpointId, spec));
  }
}

/**
 * Run fn against a Firewall holding this host's state, under the host lock, then make our
 * chains exactly what that state says (one iptables-save and at most one iptables-restore per
 * family, writing only what differs; with `backend: 'nft'`, one table listing and one nft
 * transaction — give the backend the daemon recorded, so both program the same one). A reconcile rather than the proxy's incremental apply:
 * a fresh process must create the base chains its jumps need, and may remove rules another
 * process wrote. Links and service VIPs come from the store as well, so the daemon's rules
 * survive a standalone call made while it is down.
 */
export async function withHostFirewall<T>(
  opts: { store: Store; hostId: string; lockDir?: string; backend?: BackendKind; warn: (m: string) => void },
  fn: (fw: Firewall) => Promise<T>,
): Promise<T> {
  const lock = await HostLock.acquire(opts.lockDir);
  const fw = new Firewall({ allocator: new HostPortAllocator({ hostId: opts.hostId, store: opts.store }), backend: opts.backend ?? 'iptables' });
  try {
    // Inside bulk() nothing is applied until the end; the reconcile applies it all at once and
    // leaves bulk's own final sync nothing to do.
    return await fw.bulk(async () => {
      await preloadFirewall(fw, opts.store, opts.hostId, opts.warn);
      const out = await fn(fw);
      await fw.reconcile();
      return out;
    });
  } finally {
    fw.close();
    lock.release();
  }
}
