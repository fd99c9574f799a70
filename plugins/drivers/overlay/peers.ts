// The overlay control plane of one host: watches the host registry and the endpoints of every
// overlay network this host has members on, and keeps each network's VXLAN device holding one
// FDB + neighbour entry set per remote endpoint. A full read (store and kernel) starts every
// network and follows every watch gap; store outages leave the kernel as it is.
import { keys, lastSegment } from '../../../store/keys.js';
import type { Store, WatchEvent, Watcher } from '../../../store/types.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { decodeEndpointRecord } from '../common/records.js';
import { decodeHost, type PeerHost } from './hosts.js';
import { asInstalled, DesiredPeers, diffEntries, diffEntriesFor, diffSize, markInstalled, peerOf, type InstalledPeer, type LocalNetwork, type PeerEndpoint, type PeerTable } from './peer-entries.js';

export interface PeerProgrammerOptions {
  store: Store;
  /** This host's id (its own endpoints are local, never programmed as peers). */
  hostId: string;
  table: PeerTable;
  log?: DriverLogger;
  /** A host's record vanished (lease expired) / came back. */
  onHostGone?: (hostId: string) => void;
  onHostBack?: (hostId: string) => void;
  /** Delay before retrying a failed store read or kernel write (default 250 ms, doubling to 4 s). */
  retryMs?: number;
}

interface NetState {
  local: LocalNetwork;
  /** Endpoint id → what programming needs of it (records that cannot be programmed are absent). */
  endpoints: Map<string, PeerEndpoint>;
  watcher?: Watcher;
  /** What the table holds; undefined = unknown (read it before diffing). */
  installed?: Map<string, InstalledPeer>;
  /** The desired entries as last computed (kept current change by change between full syncs). */
  desired?: DesiredPeers;
  /** Endpoints changed since the last sync. */
  changed: Set<string>;
  /** The next sync computes everything again (a full read, hosts changed, a failure). */
  full: boolean;
  /** Endpoints have been read at least once. */
  ready: boolean;
  detached: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
}

/** Programmer status, for tests, `doctor` and benchmarks. */
export interface PeerStatus {
  hosts: number;
  networks: { id: string; endpoints: number; installed: number | null; ready: boolean }[];
  syncs: number;
  errors: number;
}

/** Keeps remote endpoints programmed on this host's VXLAN devices. */
export class PeerProgrammer {
  private readonly hosts = new Map<string, PeerHost>();
  private readonly nets = new Map<string, NetState>();
  private readonly dirty = new Set<string>();
  private hostsWatcher?: Watcher;
  private hostsReady = false;
  private hostsTimer?: NodeJS.Timeout;
  private hostFailures = 0;
  private draining?: Promise<void>;
  private waiters: (() => void)[] = [];
  private stopped = false;
  private syncs = 0;
  private errors = 0;
  private readonly log: DriverLogger;

  constructor(private readonly opts: PeerProgrammerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** Read the host registry and watch it. Resolves after the first attempt (later ones run in the background). */
  async start(): Promise<void> {
    await this.subscribeHosts();
  }

  /** Stop watching; the kernel keeps what it has. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.hostsTimer);
    const ws = [this.hostsWatcher, ...[...this.nets.values()].map((s) => (clearTimeout(s.timer), s.watcher))];
    this.nets.clear();
    await Promise.all(ws.map((w) => w?.cancel().catch(() => undefined)));
    await this.draining;
  }

  /**
   * Start programming a network this host now has members on: read its endpoints, watch them,
   * and bring the device's entries in line (stale removed, missing added). Idempotent.
   */
  attach(local: LocalNetwork): void {
    if (this.stopped) return;
    const cur = this.nets.get(local.id);
    if (cur && cur.local.vxlan === local.vxlan && cur.local.port === local.port) return;
    if (cur) void this.detach(local.id);
    const st: NetState = { local, endpoints: new Map(), changed: new Set(), full: true, ready: false, detached: false, failures: 0 };
    this.nets.set(local.id, st);
    void this.subscribe(st);
  }

  /** Stop programming a network (its device is going away). */
  async detach(networkId: string): Promise<void> {
    const st = this.nets.get(networkId);
    if (!st) return;
    this.nets.delete(networkId);
    st.detached = true;
    clearTimeout(st.timer);
    this.dirty.delete(networkId);
    await st.watcher?.cancel().catch(() => undefined);
  }

  /** The device's entries are unknown (it was made again): read them before the next diff. */
  invalidate(networkId: string): void {
    const st = this.nets.get(networkId);
    if (!st) return;
    st.installed = undefined;
    this.markDirty(networkId);
  }

  /** Resolves when every attached network has been read and nothing is waiting to be programmed. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  status(): PeerStatus {
    return {
      hosts: this.hosts.size,
      networks: [...this.nets.values()].map((s) => ({ id: s.local.id, endpoints: s.endpoints.size, installed: s.installed?.size ?? null, ready: s.ready })),
      syncs: this.syncs,
      errors: this.errors,
    };
  }

  /** Live hosts as last seen (id → peer view). */
  liveHosts(): ReadonlyMap<string, PeerHost> {
    return this.hosts;
  }

  // ---- host registry ----

  private async subscribeHosts(): Promise<void> {
    if (this.stopped) return;
    const { store } = this.opts;
    try {
      const r = await store.range(keys.hosts());
      const seen = new Map<string, PeerHost>();
      for (const kv of r.kvs) {
        const id = lastSegment(kv.key);
        const h = decodeHost(id, kv.value);
        if (h) seen.set(id, h);
      }
      this.replaceHosts(seen);
      const w = await store.watch(keys.hosts(), (ev) => this.onHostEvent(ev), {
        fromRevision: r.revision + 1,
        onGap: (err) => this.hostsGap(err),
      });
      if (this.stopped) return void w.cancel();
      this.hostsWatcher = w;
      this.hostsReady = true;
      this.hostFailures = 0;
    } catch (err) {
      this.errors++;
      const wait = this.backoff(this.hostFailures++);
      this.log.warn({ err: (err as Error).message, retryInMs: wait }, 'cannot read the host registry; keeping the data plane as it is');
      clearTimeout(this.hostsTimer);
      this.hostsTimer = setTimeout(() => void this.subscribeHosts(), wait);
    }
    this.settle();
  }

  private hostsGap(err: Error): void {
    this.log.warn({ err: err.message }, 'host registry watch lost history; reading it again');
    const w = this.hostsWatcher;
    this.hostsWatcher = undefined;
    void w?.cancel();
    void this.subscribeHosts();
  }

  /** Replace the whole host map (a full read): report who left and who came, re-program all. */
  private replaceHosts(next: Map<string, PeerHost>): void {
    for (const id of this.hosts.keys()) if (!next.has(id)) this.opts.onHostGone?.(id);
    for (const id of next.keys()) if (!this.hosts.has(id)) this.opts.onHostBack?.(id);
    this.hosts.clear();
    for (const [id, h] of next) this.hosts.set(id, h);
    for (const st of this.nets.values()) {
      st.full = true;
      this.markDirty(st.local.id);
    }
  }

  private onHostEvent(ev: WatchEvent): void {
    const id = lastSegment(ev.key);
    const before = this.hosts.get(id);
    const after = ev.type === 'put' ? decodeHost(id, ev.value) : undefined;
    if (after) this.hosts.set(id, after);
    else this.hosts.delete(id);
    if (before && !after) this.opts.onHostGone?.(id);
    if (!before && after) this.opts.onHostBack?.(id);
    if (before?.advertise === after?.advertise && before?.port === after?.port) return;
    this.log.info({ host: id, advertise: after?.advertise ?? null, change: after ? (before ? 'changed' : 'joined') : 'left' }, 'overlay peer host changed');
    for (const st of this.nets.values()) {
      for (const ep of st.endpoints.values()) {
        if (ep.hostId === id) {
          st.full = true;
          this.markDirty(st.local.id);
          break;
        }
      }
    }
  }

  // ---- endpoints of one network ----

  private async subscribe(st: NetState): Promise<void> {
    if (st.detached || this.stopped) return;
    const { store } = this.opts;
    const prefix = keys.networkEndpoints(st.local.id);
    try {
      const r = await store.range(prefix);
      if (st.detached) return;
      st.endpoints.clear();
      for (const kv of r.kvs) this.putEndpoint(st, kv.key, kv.value);
      st.ready = true;
      st.installed = undefined; // a full read: check the kernel too
      st.full = true;
      this.markDirty(st.local.id);
      const w = await store.watch(prefix, (ev) => this.onEndpointEvent(st, ev), {
        fromRevision: r.revision + 1,
        onGap: (err) => this.endpointsGap(st, err),
      });
      if (st.detached || this.stopped) return void w.cancel();
      st.watcher = w;
      st.failures = 0;
    } catch (err) {
      this.errors++;
      const wait = this.backoff(st.failures++);
      this.log.warn({ network: st.local.id, err: (err as Error).message, retryInMs: wait }, 'cannot read overlay endpoints; keeping the entries as they are');
      clearTimeout(st.timer);
      st.timer = setTimeout(() => void this.subscribe(st), wait);
      this.settle();
    }
  }

  private endpointsGap(st: NetState, err: Error): void {
    this.log.warn({ network: st.local.id, err: err.message }, 'endpoint watch lost history; reading the network again');
    const w = st.watcher;
    st.watcher = undefined;
    void w?.cancel();
    void this.subscribe(st);
  }

  private onEndpointEvent(st: NetState, ev: WatchEvent): void {
    if (st.detached) return;
    if (ev.type === 'delete') st.endpoints.delete(lastSegment(ev.key));
    else this.putEndpoint(st, ev.key, ev.value);
    st.changed.add(lastSegment(ev.key));
    this.markDirty(st.local.id);
  }

  private putEndpoint(st: NetState, key: string, value: string): void {
    const id = lastSegment(key);
    try {
      const peer = peerOf(decodeEndpointRecord(value, key));
      if (peer) st.endpoints.set(id, peer);
      else st.endpoints.delete(id);
    } catch (err) {
      this.log.error({ key, err: (err as Error).message }, 'skipping unreadable endpoint record');
      st.endpoints.delete(id);
    }
  }

  // ---- programming ----

  private markDirty(networkId: string): void {
    if (this.stopped) return;
    this.dirty.add(networkId);
    if (!this.draining) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    await Promise.resolve(); // let markDirty store this promise before the loop can end
    while (this.dirty.size > 0 && !this.stopped) {
      const id = this.dirty.values().next().value as string;
      this.dirty.delete(id);
      const st = this.nets.get(id);
      if (st?.ready && this.hostsReady) await this.sync(st);
    }
    this.draining = undefined;
    this.settle();
  }

  /**
   * Bring one network's device in line. Between full syncs only the MACs that changed endpoints
   * touch are computed and diffed; a full read, a host change, a failure or a MAC or address
   * claimed twice computes the whole network again.
   */
  private async sync(st: NetState): Promise<void> {
    const changes = [...st.changed].map((id): [string, PeerEndpoint | undefined] => [id, st.endpoints.get(id)]);
    st.changed.clear();
    const macs = !st.full && st.installed && st.desired ? st.desired.update(changes) : undefined;
    if (!macs) st.desired = DesiredPeers.build(st.endpoints, this.hosts, this.opts.hostId);
    st.full = false;
    const desired = st.desired!;
    const known = st.installed;
    try {
      const installed = known ?? (await this.opts.table.read(st.local));
      const diff = macs ? diffEntriesFor(installed, desired.entries, macs, (ip) => desired.wants(ip)) : diffEntries(installed, desired.entries);
      if (diffSize(diff) > 0) {
        await this.opts.table.apply(st.local, diff);
        this.log.debug({ network: st.local.id, put: diff.put.length, remove: diff.remove.length }, 'overlay peers programmed');
      }
      this.syncs++;
      st.failures = 0;
      // Detached, or the device was declared unknown meanwhile (the next sync reads it).
      if (st.detached || (known && st.installed !== known)) return;
      if (macs) markInstalled(installed, desired.entries, macs);
      else st.installed = asInstalled(desired.entries);
    } catch (err) {
      this.errors++;
      st.installed = undefined;
      st.full = true;
      const wait = this.backoff(st.failures++);
      this.log.warn({ network: st.local.id, err: (err as Error).message, retryInMs: wait }, 'programming overlay peers failed; will read the device and retry');
      clearTimeout(st.timer);
      st.timer = setTimeout(() => this.markDirty(st.local.id), wait);
    }
  }

  private backoff(failures: number): number {
    return Math.min(4000, (this.opts.retryMs ?? 250) * 2 ** Math.min(failures, 5));
  }

  private isIdle(): boolean {
    if (!this.hostsReady || this.draining || this.dirty.size > 0) return false;
    for (const st of this.nets.values()) if (!st.ready || st.installed === undefined) return false;
    return true;
  }

  private settle(): void {
    if (!this.isIdle() && !this.stopped) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
