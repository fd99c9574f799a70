// Applying the desired nft table: plans the `nft -f -` script that turns what the kernel holds
// into what is desired for a set of changed keys (one transaction), and reads the table back
// with `nft -j list table` (rules carry a tag comment, elements compare by key and value).
import { ProxyError } from './errors.js';
import type { NetnsTools } from './exec.js';
import type { ApplyStats } from './iptables.js';
import { chainK, elemK, setK, type NftDesired } from './nft-desired.js';
import { elemId, NFT_TABLE, ruleTag } from './nft-render.js';
import * as v from './validate.js';
import { PROTOS, type Proto } from './validate.js';

/** What `nft -j list table inet tsoverlay` shows. */
export interface NftApplied {
  chains: Map<string, string[]>;
  sets: Map<string, 'set' | 'map'>;
  /** set -> element id -> value id ('' for plain sets). Dynamic (aff-…) sets are not listed. */
  elems: Map<string, Map<string, string>>;
}

export const emptyApplied = (): NftApplied => ({ chains: new Map(), sets: new Map(), elems: new Map() });

/** Sets the packet path fills (affinity): their elements are not ours to compare. */
const dynamic = (set: string) => set.startsWith('aff-');

type Json = Record<string, unknown>;

function valueId(x: unknown): string {
  if (x === null || x === undefined) return '';
  if (typeof x === 'string' || typeof x === 'number') return String(x);
  const o = x as Json;
  if (Array.isArray(o.concat)) return o.concat.map(valueId).join(' . ');
  if (o.elem && typeof o.elem === 'object') return valueId((o.elem as Json).val);
  for (const verdict of ['goto', 'jump']) if (o[verdict]) return `${verdict} ${String((o[verdict] as Json).target)}`;
  if ('prefix' in o) return `${String((o.prefix as Json).addr)}/${String((o.prefix as Json).len)}`;
  return JSON.stringify(x);
}

/** Parse `nft -j list table inet tsoverlay` output. */
export function parseNftJson(text: string): NftApplied {
  const out = emptyApplied();
  const items = (JSON.parse(text) as { nftables?: Json[] }).nftables ?? [];
  for (const item of items) {
    if (item.chain) out.chains.set(String((item.chain as Json).name), []);
    for (const kind of ['set', 'map'] as const) {
      const s = item[kind] as Json | undefined;
      if (!s) continue;
      const name = String(s.name);
      out.sets.set(name, kind);
      if (dynamic(name)) continue;
      const m = new Map<string, string>();
      for (const e of (s.elem as unknown[] | undefined) ?? []) {
        if (kind === 'map' && Array.isArray(e)) m.set(valueId(e[0]), valueId(e[1]));
        else m.set(valueId(e), '');
      }
      out.elems.set(name, m);
    }
  }
  for (const item of items) {
    const r = item.rule as Json | undefined;
    if (r) out.chains.get(String(r.chain))?.push(typeof r.comment === 'string' ? r.comment : '');
  }
  return out;
}

interface Plan {
  text: string;
  stats: ApplyStats;
  commit: (applied: NftApplied) => void;
}

const CHUNK = 1000;

/** An element's key as nft input from its id: in link sets the third part is an interface name (quoted). */
export function keyText(set: string, id: string): string | undefined {
  const parts = id.split(' . ');
  const safe = (p: string) => {
    try {
      if (/^\d{1,5}$/.test(p)) return v.port(p, 'port') > 0;
      if (PROTOS.includes(p as Proto)) return true;
      if (/^[0-9a-f.:]+$/i.test(p) && v.ip(p, 'address').addr === p) return true;
      return v.ifname(p) === p;
    } catch {
      return false;
    }
  };
  if (!parts.every(safe)) return undefined;
  return set.startsWith('link') ? parts.map((p, i) => (i === 2 ? `"${p}"` : p)).join(' . ') : id;
}

/** Plans and applies transactions for one namespace's table. */
export class NftKernel {
  applied = emptyApplied();
  loaded = false;

  constructor(private readonly tools: NetnsTools) {}

  /** The table as the kernel has it now (empty when it does not exist). */
  async dump(): Promise<NftApplied> {
    const r = await this.tools.tryRun('nft', ['-j', 'list', 'table', ...NFT_TABLE.split(' ')]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return emptyApplied();
      throw new ProxyError('iptables-failed', `nft list table exited ${r.code}: ${r.stderr.trim()}`);
    }
    return parseNftJson(r.stdout);
  }

  async load(): Promise<NftApplied> {
    this.applied = await this.dump();
    this.loaded = true;
    return this.applied;
  }

  /** Every key of the kernel's table (reconcile: what is there and not desired goes). */
  keysOf(a: NftApplied): Set<string> {
    const keys = new Set<string>();
    for (const c of a.chains.keys()) keys.add(chainK(c));
    for (const s of a.sets.keys()) keys.add(setK(s));
    for (const [s, m] of a.elems) for (const id of m.keys()) keys.add(elemK(s, id));
    return keys;
  }

  /** The script for `keys` (pure with respect to the kernel; '' when nothing differs). */
  plan(desired: NftDesired, keys: Iterable<string>): Plan {
    const a = this.applied;
    const stats: ApplyStats = { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 };
    const head: string[] = [];
    const body: string[] = [];
    const flushGone: string[] = [];
    const dropChains: string[] = [];
    const dropSets: string[] = [];
    const flushSets = new Set<string>();
    const del = new Map<string, string[]>();
    const add = new Map<string, string[]>();
    const ops: ((x: NftApplied) => void)[] = [];
    const push = (m: Map<string, string[]>, k: string, v: string) => (m.get(k) ?? m.set(k, []).get(k)!).push(v);
    const T = NFT_TABLE;
    for (const key of keys) {
      const [kind, name, id] = key.split('\t') as [string, string, string?];
      if (kind === 'c') {
        const want = desired.chain(name);
        const have = a.chains.get(name);
        if (!want) {
          if (!have) continue;
          flushGone.push(`flush chain ${T} ${name}`);
          dropChains.push(`delete chain ${T} ${name}`);
          stats.deleted++;
          ops.push((x) => x.chains.delete(name));
          continue;
        }
        const tags = want.rules.map(ruleTag);
        if (have && have.length === tags.length && have.every((t, i) => t === tags[i])) continue;
        if (!have) {
          head.push(want.base ? `add chain ${T} ${name} { ${want.base} }` : `add chain ${T} ${name}`);
          stats.created++;
        } else {
          body.push(`flush chain ${T} ${name}`);
          stats.rewritten++;
        }
        want.rules.forEach((r, i) => body.push(`add rule ${T} ${name} ${r} comment "${tags[i]}"`));
        ops.push((x) => x.chains.set(name, tags));
      } else if (kind === 's') {
        const want = desired.set(name);
        const have = a.sets.get(name);
        if (want && !have) {
          head.push(`add ${want}`.replace(/^add (set|map) /, `add $1 ${T} `));
          stats.created++;
          const k = want.startsWith('map ') ? 'map' : 'set';
          ops.push((x) => (x.sets.set(name, k), dynamic(name) || x.elems.set(name, new Map())));
        } else if (!want && have) {
          dropSets.push(`delete ${have} ${T} ${name}`);
          stats.deleted++;
          ops.push((x) => (x.sets.delete(name), x.elems.delete(name)));
        }
      } else if (kind === 'e' && id !== undefined && !dynamic(name)) {
        const want = desired.elem(name, id);
        const have = a.elems.get(name)?.get(id);
        const wantValue = want ? elemId(want.value ?? '') : undefined;
        if (have === wantValue) continue;
        // A set that is not desired goes (or never was) with its elements.
        if (desired.set(name) === undefined) continue;
        if (have !== undefined) {
          const text = keyText(name, id);
          // Something we cannot name safely (written by another tool): empty the set, re-add ours.
          if (text === undefined) flushSets.add(name);
          else push(del, name, text);
        }
        if (want) push(add, name, want.value === undefined ? want.key : `${want.key} : ${want.value}`);
        ops.push((x) => {
          const m = x.elems.get(name) ?? x.elems.set(name, new Map()).get(name)!;
          if (wantValue === undefined) m.delete(id);
          else m.set(id, wantValue);
        });
      }
    }
    const elems = (verb: string, m: Map<string, string[]>) => {
      const out: string[] = [];
      for (const [set, list] of m) {
        stats.patched++;
        for (let i = 0; i < list.length; i += CHUNK) out.push(`${verb} element ${T} ${set} { ${list.slice(i, i + CHUNK).join(', ')} }`);
      }
      return out;
    };
    for (const set of flushSets) {
      del.delete(set);
      add.set(set, desired.elemsOf(set).map((w) => (w.value === undefined ? w.key : `${w.key} : ${w.value}`)));
      body.push(`flush ${desired.set(set)!.startsWith('map ') ? 'map' : 'set'} ${T} ${set}`);
      ops.push((x) => x.elems.set(set, new Map(desired.elemsOf(set).map((w) => [elemId(w.key), elemId(w.value ?? '')]))));
    }
    const lines = [...head, ...body, ...elems('delete', del), ...elems('add', add), ...flushGone, ...dropChains, ...dropSets];
    stats.lines = lines.length;
    if (lines.length) lines.unshift(`add table ${T}`);
    return { text: lines.length ? `${lines.join('\n')}\n` : '', stats, commit: (x) => ops.forEach((op) => op(x)) };
  }

  /**
   * One `nft -f -` for `keys`. If the kernel no longer matches what we believe (a flushed
   * table, an element deleted by hand), re-read it and retry once.
   */
  async apply(desired: NftDesired, keys: () => Iterable<string>): Promise<ApplyStats> {
    if (!this.loaded) await this.load();
    const first = this.plan(desired, keys());
    if (!first.text) return first.stats;
    try {
      await this.tools.run('nft', ['-f', '-'], first.text);
      first.commit(this.applied);
      return first.stats;
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'iptables-failed') throw err;
      await this.load();
      const again = this.plan(desired, keys());
      if (again.text) await this.tools.run('nft', ['-f', '-'], again.text);
      again.commit(this.applied);
      return again.stats;
    }
  }
}
