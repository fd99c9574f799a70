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
  private appliedJumps: JumpLine[] = [];

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
    const stats: ApplyStats = { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 };
    const sections = new Map<Table, Section>(TABLES.map((t) => [t, { declare: [], body: [], drop: [] }]));
    for (const [key, want] of changes) this.chainOps(key, want, sections, stats);
    if (jumps) this.jumpOps(jumps, sections);
    const lines: string[] = [];
    for (const t of TABLES) {
      const s = sections.get(t)!;
      if (s.declare.length + s.body.length + s.drop.length === 0) continue;
      lines.push(`*${t}`, ...s.declare, ...s.body, ...s.drop, 'COMMIT');
    }
    stats.lines = lines.length;
    return { text: lines.length ? `${lines.join('\n')}\n` : '', stats };
  }

  private chainOps(key: string, want: ChainContent | undefined, sections: Map<Table, Section>, stats: ApplyStats): void {
    const have = this.applied.get(key);
    if (!want) {
      if (!have) return;
      const s = sections.get(have.table)!;
      s.declare.push(`:${have.name} - [0:0]`);
      s.drop.push(`-X ${have.name}`);
      stats.deleted++;
      return;
    }
    const s = sections.get(want.table)!;
    const rewrite = () => {
      s.declare.push(`:${want.name} - [0:0]`);
      for (const r of want.rules) s.body.push(`-A ${want.name} ${r}`);
    };
    if (!have) {
      rewrite();
      stats.created++;
    } else if (want.ordered) {
      if (!sameList(have.rules, want.rules)) {
        rewrite();
        stats.rewritten++;
      }
    } else {
      const { removed, added } = multisetDiff(have.rules, want.rules);
      if (removed.length > PATCH_LIMIT) {
        rewrite();
        stats.rewritten++;
      } else if (removed.length + added.length > 0) {
        for (const r of removed) s.body.push(`-D ${want.name} ${r}`);
        for (const r of added) s.body.push(`-A ${want.name} ${r}`);
        stats.patched++;
      }
    }
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

  private commit(changes: ReadonlyMap<string, ChainContent | undefined>, jumps?: readonly JumpLine[]): void {
    for (const [key, want] of changes) {
      if (want) this.applied.set(key, { ...want, rules: [...want.rules] });
      else this.applied.delete(key);
    }
    if (jumps) this.appliedJumps = [...jumps];
  }

  /**
   * Apply in one iptables-restore --noflush. If the kernel no longer matches what we believe
   * (someone flushed or deleted our rules), re-read it with iptables-save and retry once.
   */
  async apply(changes: ReadonlyMap<string, ChainContent | undefined>, jumps?: readonly JumpLine[]): Promise<ApplyStats> {
    const first = this.script(changes, jumps);
    if (!first.text) return first.stats;
    try {
      await this.tools.run(this.restoreTool, ['--noflush'], first.text);
      this.commit(changes, jumps);
      return first.stats;
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'iptables-failed') throw err;
      await this.load();
      const again = this.script(changes, jumps);
      if (again.text) await this.tools.run(this.restoreTool, ['--noflush'], again.text);
      this.commit(changes, jumps);
      return again.stats;
    }
  }

  /** Replace what we believe is applied by what the kernel shows. */
  async load(): Promise<Saved> {
    const saved = await this.dump();
    this.applied = saved.chains;
    this.appliedJumps = saved.jumps;
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
    return this.apply(changes, jumps);
  }
}
