// What a host's VXLAN device must hold for one overlay network, as pure data: one entry per remote
// endpoint (its MAC → its host's VTEP, its IPs → its MAC), the difference between what is
// installed and what is wanted, and the table interface the kernel (or a benchmark) implements.
import { validateIp, validateMac } from '../../../netlink/index.js';
import { macFromAddress } from '../common/naming.js';
import type { EndpointRecord } from '../common/records.js';
import type { PeerHost } from './hosts.js';

/** A remote endpoint as programmed: FDB self (mac → vtep:port), FDB master (mac → VXLAN port), neighbours (ip → mac). */
export interface PeerEntry {
  mac: string;
  vtep: string;
  port: number;
  /** Bare addresses, sorted. */
  ips: string[];
}

/** What a host found installed; fields are missing when that part of the entry is missing. */
export interface InstalledPeer {
  mac: string;
  vtep?: string;
  port?: number;
  /** The bridge's static entry pointing the MAC at the VXLAN port exists. */
  master: boolean;
  ips: string[];
}

/** Changes to apply: entries to write whole, entries to remove, single neighbours to remove. */
export interface PeerDiff {
  put: PeerEntry[];
  remove: InstalledPeer[];
  /** Neighbours of kept MACs whose address went away (or moved to another MAC). */
  dropIps: string[];
}

/** A network's VXLAN device on this host. */
export interface LocalNetwork {
  id: string;
  /** VXLAN device name. */
  vxlan: string;
  /** The device's own UDP port (an FDB entry's port is implied when equal). */
  port: number;
}

/** Where entries live: the kernel (OverlayKernel), or a recorder in benchmarks. */
export interface PeerTable {
  /** What is installed on the network's VXLAN device now. */
  read(net: LocalNetwork): Promise<Map<string, InstalledPeer>>;
  /** Apply a diff; a failure leaves the table partly changed (the caller re-reads). */
  apply(net: LocalNetwork, diff: PeerDiff): Promise<void>;
}

/** Counts for logs. */
export function diffSize(d: PeerDiff): number {
  return d.put.length + d.remove.length + d.dropIps.length;
}

/** What programming needs of an endpoint record (parsed once per record change). */
export interface PeerEndpoint {
  hostId: string;
  mac: string;
  /** Bare addresses, sorted. */
  ips: string[];
  createdAt: string;
}

/**
 * The peer view of an endpoint record, or undefined when it is not an overlay endpoint or carries
 * an unusable address or MAC (such a record must not block the others' batch).
 */
export function peerOf(ep: EndpointRecord): PeerEndpoint | undefined {
  if (ep.driver !== 'overlay') return undefined;
  try {
    const ips = ep.addresses.map((a) => a.split('/')[0]!).sort();
    for (const ip of ips) validateIp(ip);
    if (ips.length === 0) return undefined;
    const mac = validateMac(ep.mac ?? macFromAddress(ips.find((ip) => ip.includes('.')) ?? ips[0]!));
    // A multicast/broadcast MAC would make the FDB entry a flood target.
    if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) return undefined;
    return { hostId: ep.hostId, mac, ips, createdAt: ep.createdAt };
  } catch {
    return undefined;
  }
}

/** An endpoint's entry on `self`, when it counts: on another host, one with an underlay address. */
function peerEntry(ep: PeerEndpoint, hosts: ReadonlyMap<string, PeerHost>, self: string): PeerEntry | undefined {
  if (ep.hostId === self) return undefined;
  const host = hosts.get(ep.hostId);
  return host?.advertise ? { mac: ep.mac, vtep: host.advertise, port: host.port, ips: ep.ips } : undefined;
}

/**
 * The entries a host wants for one network: every endpoint of another, live host that has an
 * underlay address. A MAC claimed twice (a stale record) keeps the most recently created
 * endpoint; so does an address claimed by two MACs. One pass; conflicts are rare.
 */
export function desiredEntries(endpoints: Iterable<PeerEndpoint>, hosts: ReadonlyMap<string, PeerHost>, self: string): Map<string, PeerEntry> {
  const out = new Map<string, PeerEntry>();
  const at = new Map<string, string>();
  const byIp = new Map<string, string>();
  let conflicts = false;
  for (const ep of endpoints) {
    const entry = peerEntry(ep, hosts, self);
    if (!entry) continue;
    const prev = at.get(ep.mac);
    if (prev !== undefined) {
      conflicts = true;
      if (prev > ep.createdAt) continue;
    }
    out.set(ep.mac, entry);
    at.set(ep.mac, ep.createdAt);
    for (const ip of ep.ips) {
      const holder = byIp.get(ip);
      if (holder !== undefined && holder !== ep.mac) conflicts = true;
      byIp.set(ip, ep.mac);
    }
  }
  if (!conflicts) return out;
  // One IP → one MAC: the later-created claimant keeps it.
  byIp.clear();
  for (const [mac, e] of out) {
    for (const ip of e.ips) {
      const holder = byIp.get(ip);
      if (holder === undefined || at.get(holder)! <= at.get(mac)!) byIp.set(ip, mac);
    }
  }
  for (const [mac, e] of out) out.set(mac, { ...e, ips: e.ips.filter((ip) => byIp.get(ip) === mac) });
  return out;
}

function sameEntry(have: InstalledPeer, want: PeerEntry): boolean {
  return have.master && have.vtep === want.vtep && have.port === want.port && have.ips.join() === want.ips.join();
}

/** The changes that turn `installed` into `desired`. */
export function diffEntries(installed: ReadonlyMap<string, InstalledPeer>, desired: ReadonlyMap<string, PeerEntry>): PeerDiff {
  const wantedIps = new Set<string>();
  for (const e of desired.values()) for (const ip of e.ips) wantedIps.add(ip);
  return diffEntriesFor(installed, desired, new Set([...desired.keys(), ...installed.keys()]), (ip) => wantedIps.has(ip));
}

function installedOf(e: PeerEntry): InstalledPeer {
  return { mac: e.mac, vtep: e.vtep, port: e.port, master: true, ips: [...e.ips] };
}

/** The installed view of what `desired` says (after a successful apply). */
export function asInstalled(desired: ReadonlyMap<string, PeerEntry>): Map<string, InstalledPeer> {
  const out = new Map<string, InstalledPeer>();
  for (const [mac, e] of desired) out.set(mac, installedOf(e));
  return out;
}

/** After `diff` (made for `macs`) was applied: the installed view of those MACs, in place. */
export function markInstalled(installed: Map<string, InstalledPeer>, desired: ReadonlyMap<string, PeerEntry>, macs: Iterable<string>): void {
  for (const mac of macs) {
    const e = desired.get(mac);
    if (e) installed.set(mac, installedOf(e));
    else installed.delete(mac);
  }
}

/**
 * The changes for `macs`, each list in `macs` order; `wanted(ip)` says whether any desired entry holds an address. Given every MAC of both sides it
 * is diffEntries; given the MACs that changed since `installed` was `desired`, the same diff in
 * O(|macs|). An address that moved to another MAC is rewritten by that MAC's put, not deleted.
 */
export function diffEntriesFor(installed: ReadonlyMap<string, InstalledPeer>, desired: ReadonlyMap<string, PeerEntry>, macs: Iterable<string>, wanted: (ip: string) => boolean): PeerDiff {
  const diff: PeerDiff = { put: [], remove: [], dropIps: [] };
  for (const mac of macs) {
    const want = desired.get(mac);
    const have = installed.get(mac);
    if (want) {
      if (!have || !sameEntry(have, want)) diff.put.push(want);
      for (const ip of have?.ips ?? []) if (!want.ips.includes(ip) && !wanted(ip)) diff.dropIps.push(ip);
    } else if (have) {
      diff.remove.push({ ...have, ips: have.ips.filter((ip) => !wanted(ip)) });
    }
  }
  return diff;
}

/**
 * One network's desired entries, kept current endpoint by endpoint so that a change costs what it
 * touches rather than a pass over the whole network. While no MAC or address is claimed twice
 * (the normal case), an endpoint's change decides its own MAC's entry alone; a claim made twice
 * (a stale record) makes `update` answer undefined, and the caller rebuilds with desiredEntries,
 * whose tie rules then apply. Built again whenever hosts change.
 */
export class DesiredPeers {
  readonly entries: Map<string, PeerEntry>;
  /** Endpoints that count (remote, on a host with an underlay address): id → endpoint. */
  private readonly counted = new Map<string, PeerEndpoint>();
  private readonly macClaims = new Map<string, Set<string>>();
  private readonly ipClaims = new Map<string, Set<string>>();
  private conflicts = 0;
  /** Built with no claim shared: entries are exactly one per counted endpoint. */
  private readonly exact: boolean;

  private constructor(
    private readonly hosts: ReadonlyMap<string, PeerHost>,
    private readonly self: string,
    endpoints: ReadonlyMap<string, PeerEndpoint>,
  ) {
    this.entries = desiredEntries(endpoints.values(), hosts, self);
    for (const [id, ep] of endpoints) if (peerEntry(ep, hosts, self)) this.claim(id, ep);
    this.exact = this.conflicts === 0;
  }

  static build(endpoints: ReadonlyMap<string, PeerEndpoint>, hosts: ReadonlyMap<string, PeerHost>, self: string): DesiredPeers {
    return new DesiredPeers(hosts, self, endpoints);
  }

  /** Whether a desired entry holds `ip`. */
  wants(ip: string): boolean {
    return (this.ipClaims.get(ip)?.size ?? 0) > 0;
  }

  /**
   * Take the endpoints' current values (undefined = gone) and bring the entries in line. Returns
   * the MACs whose entry may have changed, or undefined when a claim is shared now or was when
   * this was built: build again then (this object is spent).
   */
  update(changes: Iterable<[string, PeerEndpoint | undefined]>): Set<string> | undefined {
    // Built while a claim was shared: the tie rules shaped entries this change does not touch.
    if (!this.exact) return undefined;
    const macs = new Set<string>();
    for (const [id, ep] of changes) {
      const old = this.counted.get(id);
      if (old) {
        this.unclaim(id, old);
        macs.add(old.mac);
      }
      if (ep && peerEntry(ep, this.hosts, this.self)) {
        this.claim(id, ep);
        macs.add(ep.mac);
      }
    }
    if (this.conflicts > 0) return undefined;
    for (const mac of macs) {
      const [id] = this.macClaims.get(mac) ?? [];
      const entry = id === undefined ? undefined : peerEntry(this.counted.get(id)!, this.hosts, this.self);
      if (entry) this.entries.set(mac, entry);
      else this.entries.delete(mac);
    }
    return macs;
  }

  private claim(id: string, ep: PeerEndpoint): void {
    this.counted.set(id, ep);
    this.add(this.macClaims, ep.mac, id);
    for (const ip of ep.ips) this.add(this.ipClaims, ip, id);
  }

  private unclaim(id: string, ep: PeerEndpoint): void {
    this.counted.delete(id);
    this.drop(this.macClaims, ep.mac, id);
    for (const ip of ep.ips) this.drop(this.ipClaims, ip, id);
  }

  private add(index: Map<string, Set<string>>, key: string, id: string): void {
    const set = index.get(key);
    if (!set) return void index.set(key, new Set([id]));
    if (set.has(id)) return;
    if (set.size === 1) this.conflicts++;
    set.add(id);
  }

  private drop(index: Map<string, Set<string>>, key: string, id: string): void {
    const set = index.get(key);
    if (!set?.delete(id)) return;
    if (set.size === 1) this.conflicts--;
    if (set.size === 0) index.delete(key);
  }
}
