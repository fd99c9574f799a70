// The desired firewall, materialized as rendered chain contents per family and kept current
// incrementally: each mutation renders only what it touches and reports the chains it changed.
import {
  baseJumps,
  bindingRule,
  dispatchRule,
  linkRules,
  networkChains,
  serviceRules,
  type LinkState,
  type NetworkState,
  type PortBinding,
  type ServiceState,
} from './build.js';
import type { ChainContent, JumpLine } from './iptables.js';
import { renderRule } from './render.js';
import { bucketChain, chainKey, CHAINS, type Chain, type Family } from './rules.js';
import { familyOf } from './validate.js';

export type Changed = Record<Family, Set<string>>;

const FAMILIES: readonly Family[] = [4, 6];
const DNAT_KEY = chainKey('nat', CHAINS.dnat);
const SERVICES_KEY = chainKey('nat', CHAINS.services);
const LINKS_KEY = chainKey('filter', CHAINS.links);

function content(c: Chain, family: Family): ChainContent {
  return { table: c.table, name: c.name, ordered: c.ordered, rules: c.rules.map((r) => renderRule(r, family)) };
}

interface PerFamily {
  net: Map<string, ChainContent>;
  /** bucket chain key -> (rule text -> endpoint) */
  buckets: Map<string, { name: string; dispatch: string; rules: Map<string, string> }>;
  links: Map<string, string[]>;
  services: Map<string, { entry: string[]; chains: ChainContent[] }>;
  /** Every SVC/SEP chain by key. */
  svcChains: Map<string, ChainContent>;
}

/** Rendered desired state; every mutator renders first, so a render error changes nothing. */
export class DesiredState {
  private readonly fam: Record<Family, PerFamily>;
  private readonly jumpLines: Record<Family, JumpLine[]>;

  constructor() {
    const empty = (f: Family): PerFamily => ({
      net: new Map(networkChains([], f).map((c) => [chainKey(c.table, c.name), content(c, f)])),
      buckets: new Map(),
      links: new Map(),
      services: new Map(),
      svcChains: new Map(),
    });
    this.fam = { 4: empty(4), 6: empty(6) };
    const jl = (f: Family) => baseJumps(f).map((j) => ({ table: j.table, chain: j.chain, rule: renderRule(j.rule, f) }));
    this.jumpLines = { 4: jl(4), 6: jl(6) };
  }

  static changed(): Changed {
    return { 4: new Set(), 6: new Set() };
  }

  jumps(family: Family): JumpLine[] {
    return this.jumpLines[family];
  }

  /** Re-render the network-level chains from the full list of networks. */
  setNetworks(networks: readonly NetworkState[]): Changed {
    const rendered = FAMILIES.map((f) => new Map(networkChains(networks, f).map((c) => [chainKey(c.table, c.name), content(c, f)])));
    const changed = DesiredState.changed();
    FAMILIES.forEach((f, i) => {
      this.fam[f].net = rendered[i]!;
      for (const k of rendered[i]!.keys()) changed[f].add(k);
    });
    return changed;
  }

  /** Replace an endpoint's published ports (empty = none). */
  setBindings(endpointId: string, before: readonly PortBinding[], after: readonly PortBinding[]): Changed {
    const adds = after.map((b) => ({ b, f: familyOf(b.containerIp), text: renderRule(bindingRule(b), familyOf(b.containerIp)) }));
    const dispatch = after.map((b) => renderRule(dispatchRule(b.proto, b.hostPort), familyOf(b.containerIp)));
    const changed = DesiredState.changed();
    for (const b of before) {
      const f = familyOf(b.containerIp);
      const key = chainKey('nat', bucketChain(b.proto, b.hostPort));
      const bucket = this.fam[f].buckets.get(key);
      if (!bucket) continue;
      bucket.rules.delete(renderRule(bindingRule(b), f));
      changed[f].add(key);
      if (bucket.rules.size === 0) {
        this.fam[f].buckets.delete(key);
        changed[f].add(DNAT_KEY);
      }
    }
    adds.forEach(({ b, f, text }, i) => {
      const name = bucketChain(b.proto, b.hostPort);
      const key = chainKey('nat', name);
      let bucket = this.fam[f].buckets.get(key);
      if (!bucket) {
        this.fam[f].buckets.set(key, (bucket = { name, dispatch: dispatch[i]!, rules: new Map() }));
        changed[f].add(DNAT_KEY);
      }
      bucket.rules.set(text, endpointId);
      changed[f].add(key);
    });
    return changed;
  }

  /** Add, replace (state) or remove (undefined) one link. */
  setLink(id: string, state: LinkState | undefined): Changed {
    const changed = DesiredState.changed();
    for (const f of FAMILIES) {
      const had = this.fam[f].links.delete(id);
      if (state && familyOf(state.fromIp) === f) this.fam[f].links.set(id, linkRules(state).map((r) => renderRule(r, f)));
      else if (!had) continue;
      changed[f].add(LINKS_KEY);
    }
    return changed;
  }

  /** Add, replace (state) or remove (undefined) one service; reports its old and new chains. */
  setService(name: string, state: ServiceState | undefined): Changed {
    const changed = DesiredState.changed();
    const next = state ? serviceRules(state) : undefined;
    const f2 = state?.family;
    const rendered = next && f2 ? { entry: next.entry.map((r) => renderRule(r, f2)), chains: next.chains.map((c) => content(c, f2)) } : undefined;
    for (const f of FAMILIES) {
      const old = this.fam[f].services.get(name);
      if (old) {
        this.fam[f].services.delete(name);
        for (const c of old.chains) {
          changed[f].add(chainKey(c.table, c.name));
          this.fam[f].svcChains.delete(chainKey(c.table, c.name));
        }
        changed[f].add(SERVICES_KEY);
      }
      if (rendered && f === f2) {
        this.fam[f].services.set(name, rendered);
        for (const c of rendered.chains) {
          changed[f].add(chainKey(c.table, c.name));
          this.fam[f].svcChains.set(chainKey(c.table, c.name), c);
        }
        changed[f].add(SERVICES_KEY);
      }
    }
    return changed;
  }

  /** The desired content of one chain, or undefined when it must not exist. */
  chain(family: Family, key: string): ChainContent | undefined {
    const s = this.fam[family];
    if (key === DNAT_KEY) return { table: 'nat', name: CHAINS.dnat, ordered: false, rules: [...s.buckets.values()].map((b) => b.dispatch) };
    if (key === SERVICES_KEY) return { table: 'nat', name: CHAINS.services, ordered: false, rules: [...s.services.values()].flatMap((x) => x.entry) };
    if (key === LINKS_KEY) return { table: 'filter', name: CHAINS.links, ordered: false, rules: [...s.links.values()].flat() };
    const net = s.net.get(key);
    if (net) return net;
    const bucket = s.buckets.get(key);
    if (bucket) return { table: 'nat', name: bucket.name, ordered: false, rules: [...bucket.rules.keys()] };
    return s.svcChains.get(key);
  }

  /** Desired content of every listed chain (undefined = delete it). */
  changes(family: Family, keys: Iterable<string>): Map<string, ChainContent | undefined> {
    const out = new Map<string, ChainContent | undefined>();
    for (const k of keys) out.set(k, this.chain(family, k));
    return out;
  }

  /** Every chain we want in one family. */
  all(family: Family): Map<string, ChainContent> {
    const s = this.fam[family];
    const keys = [DNAT_KEY, SERVICES_KEY, LINKS_KEY, ...s.net.keys(), ...s.buckets.keys()];
    const out = new Map<string, ChainContent>();
    for (const k of keys) out.set(k, this.chain(family, k)!);
    for (const [k, c] of s.svcChains) out.set(k, c);
    return out;
  }
}
