// Applying the desired nft table: plans the `nft -f -` script that turns what the kernel holds
// into what is desired for a set of changed keys (one transaction), and reads the table back
// with `nft -j list table` (rules carry a tag comment, elements compare by key and value).
import { ProxyError } from './errors.js';
import type { NetnsTools } from './exec.js';
import type { ApplyStats } from './iptables.js';
import { chainK, elemK, setK, type NftDesired } from './nft-desired.js';
import { elemId, NFT_TABLE, ruleTag } from './nft-render.js';
import { NftSession } from './nft-session.js';
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
/** Transactions up to this size use the session (one input line each). */
const SESSION_MAX_LINES = 200;
const SESSION_MAX_BYTES = 32 * 1024;

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

const T = NFT_TABLE;
const elemText = (w: { key: string; value?: string }) => (w.value === undefined ? w.key : `${w.key} : ${w.value}`);

/**
 * Collects one transaction in the order nft needs: new sets and chains, chain rewrites, element
 * deletes then adds, then chains and sets that go (flushed first, so nothing refers to them).
 */
class PlanBuilder {
  readonly stats: ApplyStats = { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 };
  private readonly head: string[] = [];
  private readonly body: string[] = [];
  private readonly flushGone: string[] = [];
  private readonly dropChains: string[] = [];
  private readonly dropSets: string[] = [];
  private readonly flushSets = new Set<string>();
  private readonly del = new Map<string, string[]>();
  private readonly add = new Map<string, string[]>();
  /** What the applied state becomes once the script succeeded. */
  private readonly ops: ((x: NftApplied) => void)[] = [];

  constructor(
    private readonly desired: NftDesired,
    private readonly a: NftApplied,
  ) {}

  chain(name: string): void {
    const want = this.desired.chain(name);
    const have = this.a.chains.get(name);
    if (!want) {
      if (!have) return;
      this.flushGone.push(`flush chain ${T} ${name}`);
      this.dropChains.push(`delete chain ${T} ${name}`);
      this.stats.deleted++;
      this.ops.push((x) => x.chains.delete(name));
      return;
    }
    const tags = want.rules.map(ruleTag);
    if (have && have.length === tags.length && have.every((t, i) => t === tags[i])) return;
    if (!have) {
      this.head.push(want.base ? `add chain ${T} ${name} { ${want.base} }` : `add chain ${T} ${name}`);
      this.stats.created++;
    } else {
      this.body.push(`flush chain ${T} ${name}`);
      this.stats.rewritten++;
    }
    want.rules.forEach((r, i) => this.body.push(`add rule ${T} ${name} ${r} comment "${tags[i]}"`));
    this.ops.push((x) => x.chains.set(name, tags));
  }

  set(name: string): void {
    const want = this.desired.set(name);
    const have = this.a.sets.get(name);
    if (want && !have) {
      this.head.push(`add ${want}`.replace(/^add (set|map) /, `add $1 ${T} `));
      this.stats.created++;
      const kind = want.startsWith('map ') ? 'map' : 'set';
      this.ops.push((x) => {
        x.sets.set(name, kind);
        if (!dynamic(name)) x.elems.set(name, new Map());
      });
    } else if (!want && have) {
      this.dropSets.push(`delete ${have} ${T} ${name}`);
      this.stats.deleted++;
      this.ops.push((x) => {
        x.sets.delete(name);
        x.elems.delete(name);
      });
    }
  }

  elem(set: string, id: string): void {
    const want = this.desired.elem(set, id);
    const have = this.a.elems.get(set)?.get(id);
    const wantValue = want ? elemId(want.value ?? '') : undefined;
    // Same value, or a set that is not desired (it goes, or never was, with its elements).
    if (have === wantValue || this.desired.set(set) === undefined) return;
    if (have !== undefined) {
      const text = keyText(set, id);
      // Something we cannot name safely (written by another tool): empty the set, re-add ours.
      if (text === undefined) this.flushSets.add(set);
      else push(this.del, set, text);
    }
    if (want) push(this.add, set, elemText(want));
    this.ops.push((x) => {
      const m = x.elems.get(set) ?? x.elems.set(set, new Map()).get(set)!;
      if (wantValue === undefined) m.delete(id);
      else m.set(id, wantValue);
    });
  }

  finish(): Plan {
    for (const set of this.flushSets) {
      const all = this.desired.elemsOf(set);
      this.del.delete(set);
      this.add.set(set, all.map(elemText));
      this.body.push(`flush ${this.desired.set(set)!.startsWith('map ') ? 'map' : 'set'} ${T} ${set}`);
      this.ops.push((x) => x.elems.set(set, new Map(all.map((w) => [elemId(w.key), elemId(w.value ?? '')]))));
    }
    const lines = [...this.head, ...this.body, ...this.elems('delete', this.del), ...this.elems('add', this.add), ...this.flushGone, ...this.dropChains, ...this.dropSets];
    this.stats.lines = lines.length;
    this.stats.patched = new Set([...this.del.keys(), ...this.add.keys()]).size;
    if (lines.length) lines.unshift(`add table ${T}`);
    const ops = this.ops;
    return { text: lines.length ? `${lines.join('\n')}\n` : '', stats: this.stats, commit: (x) => ops.forEach((op) => op(x)) };
  }

  private elems(verb: string, m: Map<string, string[]>): string[] {
    const out: string[] = [];
    for (const [set, list] of m) {
      for (let i = 0; i < list.length; i += CHUNK) out.push(`${verb} element ${T} ${set} { ${list.slice(i, i + CHUNK).join(', ')} }`);
    }
    return out;
  }
}

const push = (m: Map<string, string[]>, k: string, v: string) => (m.get(k) ?? m.set(k, []).get(k)!).push(v);

/** Plans and applies transactions for one namespace's table. */
export class NftKernel {
  applied = emptyApplied();
  loaded = false;
  private readonly session: NftSession;

  constructor(private readonly tools: NetnsTools) {
    this.session = new NftSession(tools.argv('stdbuf', ['-oL', '-eL', tools.path('nft'), '-i']));
  }

  /**
   * Small transactions go through the long-lived session, big ones (a full sync) through
   * `nft -f -`; if the session itself is in trouble (not nft refusing the text), `nft -f -` too.
   */
  private async send(text: string): Promise<void> {
    const lines = text.split('\n').filter((l) => l !== '');
    if (lines.length <= SESSION_MAX_LINES && text.length <= SESSION_MAX_BYTES) {
      try {
        await this.session.run(lines);
        return;
      } catch (err) {
        if (!(err instanceof ProxyError) || !err.retryable) throw err;
      }
    }
    await this.tools.run('nft', ['-f', '-'], text);
  }

  /** Stop the session process (the rules stay). */
  close(): void {
    this.session.close();
  }

  /** The table as the kernel has it now (empty when it does not exist). */
  async dump(): Promise<NftApplied> {
    const r = await this.tools.tryRun('nft', ['-j', 'list', 'table', ...NFT_TABLE.split(' ')]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return emptyApplied();
      throw new ProxyError('nft-failed', `nft list table exited ${r.code}: ${r.stderr.trim()}`);
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
    const b = new PlanBuilder(desired, this.applied);
    for (const key of keys) {
      const [kind, name, id] = key.split('\t') as [string, string, string?];
      if (kind === 'c') b.chain(name);
      else if (kind === 's') b.set(name);
      else if (kind === 'e' && id !== undefined && !dynamic(name)) b.elem(name, id);
    }
    return b.finish();
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
      await this.send(first.text);
      first.commit(this.applied);
      return first.stats;
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'nft-failed') throw err;
      await this.load();
      const again = this.plan(desired, keys());
      if (again.text) await this.send(again.text);
      again.commit(this.applied);
      return again.stats;
    }
  }
}
