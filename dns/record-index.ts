// The in-memory index the DNS answers from: endpoints, networks, services and SkyDNS records,
// with the lookup maps (name per network, address, container, network label). Fed record by
// record (store-sync.ts); every change bumps `generation` so answer caches know to drop.
import { reverseName } from './address.js';
import {
  parseEndpoint,
  parseNetwork,
  parseService,
  parseSkydns,
  type EndpointView,
  type NetworkView,
  type ServiceView,
  type SkydnsView,
} from './records.js';
import { nameKey } from './name.js';

/** The kinds of record the index holds. */
export type RecordKind = 'endpoint' | 'network' | 'service' | 'skydns';

/** One SkyDNS record with the name it was written for. */
export interface SkydnsEntry {
  /** The record's own name (from its key). */
  name: string;
  rec: SkydnsView;
}

const addTo = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
};
const removeFrom = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  const s = m.get(k);
  if (s && s.delete(v) && s.size === 0) m.delete(k);
};

/** Records by id plus lookup maps, updated incrementally. */
export class RecordIndex {
  /** Bumped on every change. */
  generation = 0;
  readonly endpoints = new Map<string, EndpointView>();
  readonly networks = new Map<string, NetworkView>();
  readonly services = new Map<string, ServiceView>();
  /** networkId → name key → endpoints answering to it. */
  readonly names = new Map<string, Map<string, Set<EndpointView>>>();
  /** Canonical address → endpoints holding it. */
  readonly byAddress = new Map<string, Set<EndpointView>>();
  /** Reverse name key → endpoints holding that address. */
  readonly byReverse = new Map<string, Set<EndpointView>>();
  /** host + container → that container's endpoints (one per network). */
  readonly byContainer = new Map<string, Set<EndpointView>>();
  /** Network label → network ids (labels need not be unique). */
  readonly byLabel = new Map<string, Set<string>>();
  /** Service name key → services (by record id in `services`). */
  readonly serviceNames = new Map<string, Set<ServiceView>>();
  /** Reverse name of a VIP → services. */
  readonly serviceVips = new Map<string, Set<ServiceView>>();
  /** Name key → SkyDNS entries at that name or below it. */
  readonly skydns = new Map<string, Map<string, SkydnsEntry>>();
  private readonly skydnsByKey = new Map<string, SkydnsEntry>();
  private readonly listeners = new Set<() => void>();

  /** Be told after each change (synchronously). */
  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The label of a network id (its record's name, else the id itself). */
  networkLabel(networkId: string): string {
    return this.networks.get(networkId)?.label ?? nameKey(networkId) ?? networkId.toLowerCase();
  }

  /** Put (value) or delete (undefined) one record; `id` is its id within its kind (see store-sync). */
  apply(kind: RecordKind, id: string, value: string | undefined): void {
    if (kind === 'endpoint') this.setEndpoint(id, value);
    else if (kind === 'network') this.setNetwork(id, value);
    else if (kind === 'service') this.setService(id, value);
    else this.setSkydns(id, value);
    this.changed();
  }

  /** Drop every record of a kind (before a full re-read). */
  clear(kind: RecordKind): void {
    if (kind === 'endpoint') for (const id of [...this.endpoints.keys()]) this.setEndpoint(id, undefined);
    else if (kind === 'network') for (const id of [...this.networks.keys()]) this.setNetwork(id, undefined);
    else if (kind === 'service') for (const id of [...this.services.keys()]) this.setService(id, undefined);
    else for (const k of [...this.skydnsByKey.keys()]) this.setSkydns(k, undefined);
    this.changed();
  }

  private changed(): void {
    this.generation++;
    for (const cb of this.listeners) cb();
  }

  /** id = networkId + NUL + endpointId (decoded key segments). */
  private setEndpoint(id: string, value: string | undefined): void {
    const old = this.endpoints.get(id);
    if (old) this.unindexEndpoint(old);
    this.endpoints.delete(id);
    if (value === undefined) return;
    const slash = id.indexOf('\0');
    const ep = parseEndpoint(value, id.slice(0, slash), id.slice(slash + 1));
    if (!ep) return;
    this.endpoints.set(id, ep);
    let names = this.names.get(ep.networkId);
    if (!names) this.names.set(ep.networkId, (names = new Map()));
    for (const n of ep.names) addTo(names, n, ep);
    for (const a of ep.addrs) {
      addTo(this.byAddress, a.ip, ep);
      addTo(this.byReverse, reverseName(a), ep);
    }
    if (ep.containerId) addTo(this.byContainer, `${ep.hostId ?? ''}\0${ep.containerId}`, ep);
  }

  private unindexEndpoint(ep: EndpointView): void {
    const names = this.names.get(ep.networkId);
    if (names) {
      for (const n of ep.names) removeFrom(names, n, ep);
      if (names.size === 0) this.names.delete(ep.networkId);
    }
    for (const a of ep.addrs) {
      removeFrom(this.byAddress, a.ip, ep);
      removeFrom(this.byReverse, reverseName(a), ep);
    }
    if (ep.containerId) removeFrom(this.byContainer, `${ep.hostId ?? ''}\0${ep.containerId}`, ep);
  }

  private setNetwork(id: string, value: string | undefined): void {
    const old = this.networks.get(id);
    if (old) removeFrom(this.byLabel, old.label, id);
    this.networks.delete(id);
    const net = value === undefined ? undefined : parseNetwork(value, id);
    if (!net) return;
    this.networks.set(id, net);
    addTo(this.byLabel, net.label, id);
  }

  private setService(id: string, value: string | undefined): void {
    const old = this.services.get(id);
    if (old) {
      removeFrom(this.serviceNames, old.name, old);
      if (old.vip) removeFrom(this.serviceVips, reverseName(old.vip), old);
    }
    this.services.delete(id);
    const svc = value === undefined ? undefined : parseService(value, id);
    if (!svc) return;
    this.services.set(id, svc);
    addTo(this.serviceNames, svc.name, svc);
    if (svc.vip) addTo(this.serviceVips, reverseName(svc.vip), svc);
  }

  /** id = the SkyDNS name key (from the key path). */
  private setSkydns(id: string, value: string | undefined): void {
    const old = this.skydnsByKey.get(id);
    if (old) {
      for (const anc of ancestors(old.name)) {
        const m = this.skydns.get(anc);
        if (m && m.delete(id) && m.size === 0) this.skydns.delete(anc);
      }
      this.skydnsByKey.delete(id);
    }
    const rec = value === undefined ? undefined : parseSkydns(value);
    if (!rec) return;
    const entry: SkydnsEntry = { name: id, rec };
    this.skydnsByKey.set(id, entry);
    for (const anc of ancestors(id)) {
      let m = this.skydns.get(anc);
      if (!m) this.skydns.set(anc, (m = new Map()));
      m.set(id, entry);
    }
  }
}

/**
 * A SkyDNS record answers for its own name and every parent name (as CoreDNS's etcd plugin
 * does with prefix reads), except top-level labels alone.
 */
function ancestors(name: string): string[] {
  const out = [name];
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
    const parent = name.slice(i + 1);
    if (parent.includes('.')) out.push(parent);
  }
  return out;
}
