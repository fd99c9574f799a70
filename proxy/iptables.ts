// The iptables backend: brings our chains (TSO-*) and our jumps from built-in chains to a
// desired content in ONE `iptables-restore --noflush` per call, touching only chains that
// differ. It remembers what it applied; reconcile() re-reads the kernel with iptables-save.
import { ProxyError } from './errors.js';
import { NetnsTools } from './exec.js';
import { chainKey, type Family, type Table } from './rules.js';

/** A chain's desired or applied content: rendered rule texts (without "-A NAME "). */
export interface ChainContent {
  table: Table;
  name: string;
  ordered: boolean;
  rules: readonly string[];
}

/** A rendered rule in a built-in chain that jumps to one of ours. */
export interface JumpLine {
  table: Table;
  chain: string;
  rule: string;
}

/** What iptables-save shows of ours. */
export interface Saved {
  chains: Map<string, ChainContent>;
  jumps: JumpLine[];
}

export interface ApplyStats {
  /** Lines sent to iptables-restore (0 = nothing to do, nothing spawned). */
  lines: number;
  rewritten: number;
  patched: number;
  created: number;
  deleted: number;
}

const TABLES: readonly Table[] = ['raw', 'nat', 'filter'];
const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
/** Above this many removals an unordered chain is rewritten rather than patched rule by rule. */
const PATCH_LIMIT = 64;

const jumpId = (j: JumpLine) => `${j.table} ${j.chain} ${j.rule}`;

/** Parse iptables-save text into our chains and our jumps (everything else is ignored). */
export function parseSave(text: string): Saved {
  const chains = new Map<string, ChainContent & { rules: string[] }>();
  const jumps: JumpLine[] = [];
  let table: Table | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      table = (TABLES as readonly string[]).includes(t) ? (t as Table) : undefined;
    } else if (!table) continue;
    else if (line.startsWith(':TSO-')) {
      const name = line.slice(1).split(' ')[0]!;
      chains.set(chainKey(table, name), { table, name, ordered: true, rules: [] });
    } else if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const chain = line.slice(3, sp);
      const rule = line.slice(sp + 1);
      if (chain.startsWith('TSO-')) chains.get(chainKey(table, chain))?.rules.push(rule);
      else if (BUILTIN.has(chain) && / -j TSO-[A-Z0-9-]+$/.test(` ${rule}`)) jumps.push({ table, chain, rule });
    }
  }
  return { chains, jumps };
}

function multisetDiff(from: readonly string[], to: readonly string[]): { removed: string[]; added: string[] } {
  const count = new Map<string, number>();
  for (const r of from) count.set(r, (count.get(r) ?? 0) + 1);
  const added: string[] = [];
  for (const r of to) {
    const n = count.get(r) ?? 0;
    if (n > 0) count.set(r, n - 1);
    else added.push(r);
  }
  const removed: string[] = [];
  for (const [r, n] of count) for (let i = 0; i < n; i++) removed.push(r);
  return { removed, added };
}

/** a − b as multisets (order of a kept). */
function minus(a: readonly string[], b: readonly string[]): string[] {
  return multisetDiff(b, a).added;
}

/** a ∩ b as multisets (order of a kept). */
function intersect(a: readonly string[], b: readonly string[]): string[] {
  return minus(a, minus(a, b));
}

/** A chain's state after a plan: the kernel's content and the rules this backend owns in it. */
interface Outcome {
  kernel?: ChainContent;
  owned?: string[];
}

interface Plan {
  text: string;
  stats: ApplyStats;
  next: Map<string, Outcome>;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((r, i) => r === b[i]);

/** Per-table sections of one restore script. */
interface Section {
  declare: string[];
  body: string[];
  drop: string[];
}

/** Backend for one family in one network namespace. */
export class IptablesBackend {
  readonly family: Family;
  private readonly tools: NetnsTools;
  private applied = new Map<string, ChainContent>();
  /** Rules of each chain that this backend wrote (or adopted in a reconcile). */
  private owned = new Map<string, string[]>();
  private appliedJumps: JumpLine[] = [];
  /** False until the kernel's state has been read once: a new process must not assume empty tables. */
  private loaded = false;

  constructor(opts: { family: Family; netnsPath?: string; tools?: NetnsTools }) {
    this.family = opts.family;
    this.tools = opts.tools ?? new NetnsTools(opts.netnsPath);
  }

  private get restoreTool() {
    return this.family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  }

  /** Our chains and jumps as the kernel has them now. */
  async dump(): Promise<Saved> {
    const text = await this.tools.run(this.family === 4 ? 'iptables-save' : 'ip6tables-save', []);
    return parseSave(text);
  }

  /** What this backend believes is applied (for tests and `doctor`). */
  appliedChains(): ReadonlyMap<string, ChainContent> {
    return this.applied;
  }

  /**
   * The restore text that turns the applied state into the desired one for `changes`
   * (a chain mapped to undefined must not exist) and, when `jumps` is given, makes our
   * jumps exactly that list (missing ones appended with -A, ours not listed removed).
   * Pure with respect to the kernel; '' when nothing differs.
   */
  script(changes: ReadonlyMap<string, ChainContent | undefined>, jumps?: readonly JumpLine[]): { text: string; stats: ApplyStats } {
    const { text, stats } = this.plan(changes, jumps, false);
    return { text, stats };
  }

  /**
   * `adopt` (reconcile): the kernel must equal `changes`, whoever wrote what is there.
   * Otherwise an unordered chain only loses rules this backend put there, so a rule another
   * process added to a shared chain (a CNI plugin working without the daemon) survives.
   */
  private plan(changes: ReadonlyMap<string, ChainContent | undefined>, jumps: readonly JumpLine[] | undefined, adopt: boolean): Plan {
    const stats: ApplyStats = { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 };
    const sections = new Map<Table, Section>(TABLES.map((t) => [t, { declare: [], body: [], drop: [] }]));
    const next = new Map<string, Outcome>();
    for (const [key, want] of changes) next.set(key, this.chainOps(key, want, sections, stats, adopt));
    if (jumps) this.jumpOps(jumps, sections);
    const lines: string[] = [];
    for (const t of TABLES) {
      const s = sections.get(t)!;
      if (s.declare.length + s.body.length + s.drop.length === 0) continue;
      lines.push(`*${t}`, ...s.declare, ...s.body, ...s.drop, 'COMMIT');
    }
    stats.lines = lines.length;
    return { text: lines.length ? `${lines.join('\n')}\n` : '', stats, next };
  }

  private chainOps(key: string, want: ChainContent | undefined, sections: Map<Table, Section>, stats: ApplyStats, adopt: boolean): Outcome {
    const have = this.applied.get(key);
    const owned = this.owned.get(key) ?? [];
    if (!want) {
      if (!have) return {};
      const s = sections.get(have.table)!;
      const others = adopt ? [] : minus(have.rules, owned);
      if (others.length === 0) {
        s.declare.push(`:${have.name} - [0:0]`);
        s.drop.push(`-X ${have.name}`);
        stats.deleted++;
        return {};
      }
      // Others' rules remain: take ours out and leave the chain to them.
      for (const r of minus(have.rules, others)) s.body.push(`-D ${have.name} ${r}`);
      stats.patched++;
      return { kernel: { ...have, rules: others }, owned: [] };
    }
    const s = sections.get(want.table)!;
    const rewrite = () => {
      s.declare.push(`:${want.name} - [0:0]`);
      for (const r of want.rules) s.body.push(`-A ${want.name} ${r}`);
    };
    const exact: Outcome = { kernel: want, owned: [...want.rules] };
    if (!have) {
      rewrite();
      stats.created++;
      return exact;
    }
    if (want.ordered) {
      if (!sameList(have.rules, want.rules)) {
        rewrite();
        stats.rewritten++;
      }
      return exact;
    }
    const added = minus(want.rules, have.rules);
    // adopt: whatever is not wanted goes; otherwise only what we put there and no longer want.
    const removed = adopt ? minus(have.rules, want.rules) : intersect(minus(owned, want.rules), have.rules);
    if (adopt && removed.length > PATCH_LIMIT) {
      rewrite();
      stats.rewritten++;
      return exact;
    }
    if (removed.length + added.length > 0) {
      for (const r of removed) s.body.push(`-D ${want.name} ${r}`);
      for (const r of added) s.body.push(`-A ${want.name} ${r}`);
      stats.patched++;
    }
    if (adopt) return exact;
    return { kernel: { ...want, rules: [...minus(have.rules, removed), ...added] }, owned: [...intersect(owned, want.rules), ...added] };
  }

  private jumpOps(jumps: readonly JumpLine[], sections: Map<Table, Section>): void {
    const { removed, added } = multisetDiff(this.appliedJumps.map(jumpId), jumps.map(jumpId));
    const byId = new Map([...this.appliedJumps, ...jumps].map((j) => [jumpId(j), j]));
    // Jumps go at the end of the built-in chain (-A), never ahead of others' rules (CVE-2019-9946).
    for (const id of added) {
      const j = byId.get(id)!;
      sections.get(j.table)!.body.push(`-A ${j.chain} ${j.rule}`);
    }
    // Stale jumps are removed before any chain they target is deleted (drop lines come last).
    for (const id of removed) {
      const j = byId.get(id)!;
      sections.get(j.table)!.drop.unshift(`-D ${j.chain} ${j.rule}`);
    }
  }

  private commit(plan: Plan, jumps?: readonly JumpLine[]): void {
    for (const [key, o] of plan.next) {
      if (o.kernel) this.applied.set(key, { ...o.kernel, rules: [...o.kernel.rules] });
      else this.applied.delete(key);
      if (o.owned) this.owned.set(key, o.owned);
      else this.owned.delete(key);
    }
    if (jumps) this.appliedJumps = [...jumps];
  }

  /**
   * Apply in one iptables-restore --noflush. If the kernel no longer matches what we believe
   * (someone flushed or deleted our rules), re-read it with iptables-save and retry once.
   */
  async apply(changes: ReadonlyMap<string, ChainContent | undefined>, jumps?: readonly JumpLine[], adopt = false): Promise<ApplyStats> {
    // Declaring a chain flushes it: never write one we have not seen, or another process's
    // rules in a shared bucket would be lost.
    if (!this.loaded) await this.load();
    const first = this.plan(changes, jumps, adopt);
    if (!first.text) {
      this.commit(first, jumps);
      return first.stats;
    }
    try {
      await this.tools.run(this.restoreTool, ['--noflush'], first.text);
      this.commit(first, jumps);
      return first.stats;
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'iptables-failed') throw err;
      await this.load();
      const again = this.plan(changes, jumps, adopt);
      if (again.text) await this.tools.run(this.restoreTool, ['--noflush'], again.text);
      this.commit(again, jumps);
      return again.stats;
    }
  }

  /** Replace what we believe is applied by what the kernel shows. */
  async load(): Promise<Saved> {
    const saved = await this.dump();
    this.applied = saved.chains;
    this.appliedJumps = saved.jumps;
    this.loaded = true;
    return saved;
  }

  /**
   * Make the kernel hold exactly `desired` of ours: re-read it, rewrite what differs, create
   * what is missing, delete TSO-* chains and jumps that are not desired.
   */
  async reconcile(desired: ReadonlyMap<string, ChainContent>, jumps: readonly JumpLine[]): Promise<ApplyStats> {
    const saved = await this.load();
    const changes = new Map<string, ChainContent | undefined>(desired);
    for (const key of saved.chains.keys()) if (!desired.has(key)) changes.set(key, undefined);
    return this.apply(changes, jumps, true);
  }
}
