// Releasing what a dead host held: when a host's record has been gone (lease expired) for the
// grace time, its overlay endpoint records are deleted (compare-and-swap on what was read) and
// its addresses handed to a release callback (the IPAM). A host back within the grace keeps all.
import { keys } from '../../../store/keys.js';
import type { Store } from '../../../store/types.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { decodeEndpointRecord, type EndpointRecord } from '../common/records.js';

export interface HostReaperOptions {
  store: Store;
  /** This host (never reaped by itself). */
  hostId: string;
  graceMs: number;
  /** Free the addresses of a dead host's endpoints (after their records are gone); optional. */
  releaseAddresses?: (hostId: string, endpoints: EndpointRecord[]) => Promise<void>;
  log?: DriverLogger;
}

/** Timers per dead host; every live host runs one (the deletes are CAS, so they never clash). */
export class HostReaper {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  private readonly log: DriverLogger;

  constructor(private readonly opts: HostReaperOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** A host's record vanished: reap it after the grace time unless it comes back. */
  gone(hostId: string): void {
    if (this.stopped || hostId === this.opts.hostId || this.timers.has(hostId)) return;
    this.log.info({ host: hostId, graceMs: this.opts.graceMs }, 'peer host left; releasing its endpoints after the grace time');
    this.schedule(hostId, this.opts.graceMs);
  }

  /** A host's record is back: it keeps its endpoints and addresses. */
  back(hostId: string): void {
    const t = this.timers.get(hostId);
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(hostId);
    this.log.info({ host: hostId }, 'peer host back within the grace time');
  }

  /** Hosts holding overlay endpoints without a host record (dead before we started): start their grace. */
  async scan(live: ReadonlySet<string>): Promise<string[]> {
    const dead = new Set<string>();
    for (const ep of (await this.endpoints()).map((e) => e.rec)) if (!live.has(ep.hostId)) dead.add(ep.hostId);
    for (const h of dead) this.gone(h);
    return [...dead];
  }

  /** Hosts waiting for their grace to end. */
  pending(): string[] {
    return [...this.timers.keys()];
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(hostId: string, ms: number): void {
    const t = setTimeout(() => {
      void this.reap(hostId).then(
        () => this.timers.delete(hostId),
        (err: Error) => {
          this.log.warn({ host: hostId, err: err.message }, 'releasing a dead host failed; retrying');
          if (!this.stopped) this.schedule(hostId, Math.min(30_000, Math.max(1000, ms)));
        },
      );
    }, ms);
    t.unref();
    this.timers.set(hostId, t);
  }

  /** Delete the dead host's overlay endpoints (CAS), then release their addresses. */
  async reap(hostId: string): Promise<EndpointRecord[]> {
    const { store } = this.opts;
    if (await store.get(keys.host(hostId))) return []; // came back: keep everything
    const mine = (await this.endpoints()).filter((e) => e.rec.hostId === hostId);
    const removed: EndpointRecord[] = [];
    for (const e of mine) {
      const r = await store.txn([{ key: e.key, target: 'modRevision', op: '==', value: e.modRevision }], [{ type: 'delete', key: e.key }]);
      if (r.succeeded) removed.push(e.rec);
    }
    if (removed.length > 0) await this.opts.releaseAddresses?.(hostId, removed);
    this.log.info({ host: hostId, endpoints: removed.length }, 'released a dead host\'s overlay endpoints');
    return removed;
  }

  private async endpoints(): Promise<{ key: string; modRevision: number; rec: EndpointRecord }[]> {
    const { kvs } = await this.opts.store.range(keys.endpoints());
    const out: { key: string; modRevision: number; rec: EndpointRecord }[] = [];
    for (const kv of kvs) {
      try {
        const rec = decodeEndpointRecord(kv.value, kv.key);
        if (rec.driver === 'overlay') out.push({ key: kv.key, modRevision: kv.modRevision, rec });
      } catch {
        // unreadable records are reported by the record store's listings, not here
      }
    }
    return out;
  }
}
