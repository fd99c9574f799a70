// The desired nft table, kept current incrementally: each mutation renders only what it touches
// and reports the objects it changed as keys (c<TAB>chain, s<TAB>set, e<TAB>set<TAB>element id).
import type { LinkState, NetworkState, PortBinding, ServiceState } from './build.js';
import { networkChains } from './build.js';
import { DesiredState, type Changed } from './desired.js';
import {
  bindingElem,
  elemId,
  linkElems,
  mergeChains,
  serviceObjects,
  staticChains,
  staticSets,
  type NftChain,
  type NftElem,
} from './nft-render.js';
import { chainKey, type Family } from './rules.js';
import { familyOf } from './validate.js';

export const chainK = (name: string) => `c\t${name}`;
export const setK = (name: string) => `s\t${name}`;
export const elemK = (set: string, id: string) => `e\t${set}\t${id}`;

/** A desired element with the number of owners (bindings, links, services) wanting it. */
interface Wanted {
  key: string;
  value?: string;
  refs: number;
}

interface Rendered {
  elems: NftElem[];
  chains: NftChain[];
  sets: Map<string, string>;
}

/** Everything we want in `table inet tsoverlay`; mutators render first, so a render error changes nothing. */
export class NftDesired {
  private readonly statics = new Map<string, NftChain>(staticChains().map((c) => [c.name, c]));
  private readonly staticSetDecls = staticSets();
  private net = new Map<string, NftChain>();
  private readonly elements = new Map<string, Map<string, Wanted>>();
  private readonly links = new Map<string, NftElem[]>();
  private readonly services = new Map<string, Rendered>();
  private readonly dynChains = new Map<string, NftChain>();
  private readonly dynSets = new Map<string, string>();

  constructor() {
    this.setNetworks([]);
  }

  /** Re-render the network-level chains (raw drop, postrouting, forward, isolation). */
  setNetworks(networks: readonly NetworkState[]): Changed {
    const by = (f: Family) => new Map(networkChains(networks, f).map((c) => [chainKey(c.table, c.name), c]));
    const v4 = by(4);
    const v6 = by(6);
    const next = new Map<string, NftChain>();
    for (const k of new Set([...v4.keys(), ...v6.keys()])) {
      const c = mergeChains(v4.get(k), v6.get(k));
      next.set(c.name, c);
    }
    this.net = next;
    const changed = DesiredState.changed();
    for (const name of next.keys()) changed[4].add(chainK(name));
    return changed;
  }

  private ref(e: NftElem, delta: 1 | -1, changed: Changed, f: Family): void {
    const id = elemId(e.key);
    let set = this.elements.get(e.set);
    if (!set) this.elements.set(e.set, (set = new Map()));
    const w = set.get(id);
    if (delta > 0) {
      if (w) {
        w.refs++;
        w.value = e.value;
      } else set.set(id, { key: e.key, value: e.value, refs: 1 });
    } else if (w && --w.refs <= 0) set.delete(id);
    changed[f].add(elemK(e.set, id));
  }

  /** Replace an endpoint's published ports (empty = none). */
  setBindings(_endpointId: string, before: readonly PortBinding[], after: readonly PortBinding[]): Changed {
    const adds = after.map((b) => ({ e: bindingElem(b), f: familyOf(b.containerIp) }));
    const changed = DesiredState.changed();
    for (const b of before) this.ref(bindingElem(b), -1, changed, familyOf(b.containerIp));
    for (const { e, f } of adds) this.ref(e, 1, changed, f);
    return changed;
  }

  /** Add, replace (state) or remove (undefined) one link. */
  setLink(id: string, state: LinkState | undefined): Changed {
    const next = state ? linkElems(state) : undefined;
    const changed = DesiredState.changed();
    for (const e of this.links.get(id) ?? []) this.ref(e, -1, changed, 4);
    this.links.delete(id);
    if (next) {
      this.links.set(id, next);
      for (const e of next) this.ref(e, 1, changed, 4);
    }
    return changed;
  }

  /** Add, replace (state) or remove (undefined) one service. */
  setService(name: string, state: ServiceState | undefined): Changed {
    const next = state ? serviceObjects(state) : undefined;
    const changed = DesiredState.changed();
    const old = this.services.get(name);
    if (old) {
      for (const e of old.elems) this.ref(e, -1, changed, 4);
      for (const c of old.chains) {
        this.dynChains.delete(c.name);
        changed[4].add(chainK(c.name));
      }
      for (const s of old.sets.keys()) {
        this.dynSets.delete(s);
        changed[4].add(setK(s));
      }
      this.services.delete(name);
    }
    if (next) {
      this.services.set(name, next);
      for (const e of next.elems) this.ref(e, 1, changed, 4);
      for (const c of next.chains) {
        this.dynChains.set(c.name, c);
        changed[4].add(chainK(c.name));
      }
      for (const [s, decl] of next.sets) {
        this.dynSets.set(s, decl);
        changed[4].add(setK(s));
      }
    }
    return changed;
  }

  chain(name: string): NftChain | undefined {
    return this.statics.get(name) ?? this.net.get(name) ?? this.dynChains.get(name);
  }

  set(name: string): string | undefined {
    return this.staticSetDecls.get(name) ?? this.dynSets.get(name);
  }

  elem(set: string, id: string): { key: string; value?: string } | undefined {
    return this.elements.get(set)?.get(id);
  }

  /** The desired elements of one set. */
  elemsOf(set: string): { key: string; value?: string }[] {
    return [...(this.elements.get(set)?.values() ?? [])];
  }

  /** Every key of the desired table (for a full sync or a reconcile). */
  allKeys(): Set<string> {
    const keys = new Set<string>();
    for (const s of [...this.staticSetDecls.keys(), ...this.dynSets.keys()]) keys.add(setK(s));
    for (const c of [...this.statics.keys(), ...this.net.keys(), ...this.dynChains.keys()]) keys.add(chainK(c));
    for (const [set, m] of this.elements) for (const id of m.keys()) keys.add(elemK(set, id));
    return keys;
  }
}
