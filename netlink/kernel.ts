// Kernel and NetnsHandle: the typed API drivers call for links, addresses, routes, neighbours, FDB, sysctl.
// Every call of a handle goes through its runner with the handle's namespace path; nothing else enters a netns.
import { invalid, isExists, isNotFound, KernelError } from './errors.js';
import { Batch, type Command } from './batch.js';
import { LinkWatch } from './link-watch.js';
import { parseAddresses, parseFdb, parseLinks, parseNeighbours, parseRoutes } from './parse.js';
import { detectTools, NetnsRunner, type spawnCollect, type ToolPaths } from './runner.js';
import type {
  Address,
  AddrOptions,
  BridgePortChange,
  BridgeSpec,
  FdbEntry,
  FdbSpec,
  Link,
  LinkChange,
  LinkSpec,
  MacvlanSpec,
  NeighSpec,
  Neighbour,
  Route,
  RouteSpec,
  VxlanSpec,
} from './types.js';
import {
  validateGroup,
  validateIfName,
  validateNetnsPath,
  validateSysctlKey,
  validateSysctlValue,
  validateTable,
  type Family,
} from './validate.js';

export interface KernelOptions {
  /** Tool locations (default: found once in /usr/sbin, /sbin, /usr/bin, /bin). */
  tools?: ToolPaths;
  /** Per-spawn time limit (default 30 s); a batch may set its own. */
  timeoutMs?: number;
  /** Spawns the tools (default: directly; a long-lived process passes SpawnHelper.collect). */
  spawn?: typeof spawnCollect;
  /**
   * What `linkDel(…, { returnWhenGone: true })` watches (default: a LinkWatch on this process's
   * own namespace); false = always wait for the deleting process.
   */
  linkWatch?: LinkWatch | false;
}

/** Entry point: one per process, handing out namespace handles. */
export class Kernel {
  private readonly runner: NetnsRunner;
  private readonly linkWatch?: LinkWatch;

  constructor(opts: KernelOptions = {}) {
    this.runner = new NetnsRunner(opts.tools ?? detectTools(), opts.timeoutMs ?? 30_000, opts.spawn);
    if (opts.linkWatch !== false) this.linkWatch = opts.linkWatch ?? new LinkWatch();
  }

  /**
   * A handle on the namespace at `path` (`/var/run/netns/x`, `/proc/<pid>/ns/net`, …);
   * null/undefined = the caller's own namespace. The path is validated here, opened at each call.
   */
  ns(path?: string | null): NetnsHandle {
    const p = path == null ? null : validateNetnsPath(path);
    return new NetnsHandle(this.runner, p, this.linkWatch?.netns === p ? this.linkWatch : undefined);
  }

  /** A path naming the caller's own namespace from inside any other (veth peers, moves back). */
  get selfNetnsPath(): string {
    return `/proc/${process.pid}/ns/net`;
  }
}

/** What `ensureLink`/`ensureBridge` found or made. */
export interface EnsureResult {
  link: Link;
  created: boolean;
}

/** Kinds `ensureLink` can reconcile (a veth pair has two ends: create it with `linkAdd`). */
export type EnsurableLinkSpec = BridgeSpec | VxlanSpec | MacvlanSpec;

/** Operations on one network namespace. All methods throw KernelError. */
export class NetnsHandle {
  constructor(
    private readonly runner: NetnsRunner,
    /** The namespace path, or null for the caller's own. */
    readonly path: string | null,
    /** Observes this namespace's device list (linkDel's returnWhenGone), when one does. */
    private readonly watch?: LinkWatch,
  ) {}

  private exec(tool: 'ip' | 'bridge' | 'sysctl', args: string[], input?: string, timeoutMs?: number): Promise<string> {
    return this.runner.run(this.path, tool, args, input, timeoutMs);
  }

  /**
   * Build and run a batch of writes: one process per run of same-tool commands (`ip -batch -`,
   * `bridge -batch -`), in order; stops at the first failure, whose line is in `details.line`.
   */
  async batch(build: (b: Batch) => unknown, opts: { timeoutMs?: number } = {}): Promise<void> {
    const b = new Batch();
    build(b);
    await this.apply(b, opts);
  }

  /** Run a batch built elsewhere. */
  async apply(b: Batch, opts: { timeoutMs?: number } = {}): Promise<void> {
    const cmds = b.commands;
    for (let i = 0; i < cmds.length; ) {
      const tool = cmds[i]!.tool;
      const run: Command[] = [];
      while (i < cmds.length && cmds[i]!.tool === tool) run.push(cmds[i++]!);
      const input = run.map((c) => c.args.join(' ')).join('\n') + '\n';
      await this.exec(tool, ['-batch', '-'], input, opts.timeoutMs);
    }
  }

  // ---- writes (each a one-command batch) ----

  linkAdd(spec: LinkSpec): Promise<void> {
    return this.batch((b) => b.linkAdd(spec));
  }

  linkSet(name: string, change: LinkChange): Promise<void> {
    return this.batch((b) => b.linkSet(name, change));
  }

  linkSetUp(name: string): Promise<void> {
    return this.batch((b) => b.linkSetUp(name));
  }

  linkSetDown(name: string): Promise<void> {
    return this.batch((b) => b.linkSetDown(name));
  }

  linkSetMaster(name: string, master: string | null): Promise<void> {
    return this.batch((b) => b.linkSetMaster(name, master));
  }

  linkSetMtu(name: string, mtu: number): Promise<void> {
    return this.batch((b) => b.linkSetMtu(name, mtu));
  }

  linkSetMac(name: string, mac: string): Promise<void> {
    return this.batch((b) => b.linkSetMac(name, mac));
  }

  linkRename(name: string, newName: string): Promise<void> {
    return this.batch((b) => b.linkRename(name, newName));
  }

  linkSetNetns(name: string, netns: string): Promise<void> {
    return this.batch((b) => b.linkSetNetns(name, netns));
  }

  bridgePortSet(name: string, change: BridgePortChange): Promise<void> {
    return this.batch((b) => b.bridgePortSet(name, change));
  }

  /**
   * Delete a link. With `missingOk`, a missing link (or namespace) is success (DEL is idempotent);
   * resolves true when something was deleted. With `returnWhenGone` and a LinkWatch on this
   * namespace, resolves as soon as the link has left the namespace's list instead of when the
   * `ip` process exits (~10–15 ms later: the kernel's RCU wait for the freed device, see
   * link-watch.ts); the process still finishes in the background, bounded by its timeout.
   */
  async linkDel(name: string, opts: { missingOk?: boolean; returnWhenGone?: boolean } = {}): Promise<boolean> {
    const start = () =>
      this.batch((b) => b.linkDel(name)).then(
        () => true,
        (err: unknown) => {
          if (opts.missingOk && isNotFound(err)) return false;
          throw err;
        },
      );
    const watch = opts.returnWhenGone ? this.watch : undefined;
    // Only a link seen before the deletion starts counts as deleted when it leaves the list.
    if (!watch || !(await watch.has(name).catch(() => false))) return start();
    const del = start();
    // A failure after the link has left the list is moot (nothing fails past that point).
    del.catch(() => undefined);
    const w = watch.whenGone(name);
    try {
      return await Promise.race([del, w.gone.then(() => true)]);
    } finally {
      w.cancel();
    }
  }

  /** Delete every link in `group` (≥ 1) at once: the fast way to remove many links. */
  linkDeleteGroup(group: number, opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.batch((b) => b.linkDeleteGroup(group), opts);
  }

  addrAdd(dev: string, cidr: string, opts?: AddrOptions): Promise<void> {
    return this.batch((b) => b.addrAdd(dev, cidr, opts));
  }

  addrReplace(dev: string, cidr: string, opts?: AddrOptions): Promise<void> {
    return this.batch((b) => b.addrReplace(dev, cidr, opts));
  }

  addrDel(dev: string, cidr: string): Promise<void> {
    return this.batch((b) => b.addrDel(dev, cidr));
  }

  addrFlush(dev: string, family?: Family): Promise<void> {
    return this.batch((b) => b.addrFlush(dev, family));
  }

  routeAdd(r: RouteSpec): Promise<void> {
    return this.batch((b) => b.routeAdd(r));
  }

  routeReplace(r: RouteSpec): Promise<void> {
    return this.batch((b) => b.routeReplace(r));
  }

  routeDel(r: RouteSpec): Promise<void> {
    return this.batch((b) => b.routeDel(r));
  }

  neighAdd(n: NeighSpec): Promise<void> {
    return this.batch((b) => b.neighAdd(n));
  }

  neighReplace(n: NeighSpec): Promise<void> {
    return this.batch((b) => b.neighReplace(n));
  }

  neighDel(n: Pick<NeighSpec, 'dst' | 'dev'>): Promise<void> {
    return this.batch((b) => b.neighDel(n));
  }

  fdbAdd(f: FdbSpec): Promise<void> {
    return this.batch((b) => b.fdbAdd(f));
  }

  fdbAppend(f: FdbSpec): Promise<void> {
    return this.batch((b) => b.fdbAppend(f));
  }

  fdbReplace(f: FdbSpec): Promise<void> {
    return this.batch((b) => b.fdbReplace(f));
  }

  fdbDel(f: FdbSpec): Promise<void> {
    return this.batch((b) => b.fdbDel(f));
  }

  // ---- reads ----

  /** All links (or one group's), with kind, master, bridge-port and VXLAN details. */
  async links(opts: { group?: number } = {}): Promise<Link[]> {
    const sel = opts.group === undefined ? [] : ['group', String(validateGroup(opts.group))];
    return parseLinks(await this.exec('ip', ['-json', '-details', 'link', 'show', ...sel]));
  }

  /** One link by name, or null when there is none (ENODEV). */
  async link(name: string): Promise<Link | null> {
    validateIfName(name);
    try {
      return parseLinks(await this.exec('ip', ['-json', '-details', 'link', 'show', 'dev', name]))[0] ?? null;
    } catch (err) {
      if (err instanceof KernelError && err.code === 'ENODEV') return null;
      throw err;
    }
  }

  /** Addresses of all devices or one, of both families or one. */
  async addresses(opts: { dev?: string; family?: Family } = {}): Promise<Address[]> {
    const fam = opts.family === undefined ? [] : [`-${opts.family}`];
    const sel = opts.dev === undefined ? [] : ['dev', validateIfName(opts.dev)];
    return parseAddresses(await this.exec('ip', ['-json', ...fam, 'addr', 'show', ...sel]));
  }

  /** Routes of one table (default 'main'; 'all' for every table), both families unless one is given. */
  async routes(opts: { table?: number | 'main' | 'local' | 'all'; family?: Family } = {}): Promise<Route[]> {
    const table = opts.table === 'all' ? 'all' : validateTable(opts.table ?? 'main');
    const fams: Family[] = opts.family === undefined ? [4, 6] : [opts.family];
    const list = async (f: Family): Promise<Route[]> => {
      try {
        return parseRoutes(await this.exec('ip', ['-json', `-${f}`, 'route', 'show', 'table', table]), f, table === 'all' ? 'main' : table);
      } catch (err) {
        // A table with no route of this family does not exist yet ("FIB table does not exist").
        if (err instanceof KernelError && err.code === 'ENOENT' && /table does not exist/.test(err.message)) return [];
        throw err;
      }
    };
    const lists = await Promise.all(fams.map(list));
    return lists.flat();
  }

  /** Neighbour (ARP/NDP) entries, of all devices or one. */
  async neighbours(opts: { dev?: string; family?: Family } = {}): Promise<Neighbour[]> {
    const sel = opts.dev === undefined ? [] : ['dev', validateIfName(opts.dev)];
    const all = parseNeighbours(await this.exec('ip', ['-json', 'neigh', 'show', ...sel]));
    return opts.family === undefined ? all : all.filter((n) => n.family === opts.family);
  }

  /** Bridge FDB entries: everything, one device's (`dev`), or one bridge's ports' (`bridge`). */
  async fdb(opts: { dev?: string; bridge?: string } = {}): Promise<FdbEntry[]> {
    const sel: string[] = [];
    if (opts.bridge !== undefined) sel.push('br', validateIfName(opts.bridge));
    if (opts.dev !== undefined) sel.push('dev', validateIfName(opts.dev));
    return parseFdb(await this.exec('bridge', ['-json', 'fdb', 'show', ...sel]), opts.dev);
  }

  // ---- sysctl (net.* only: those are per namespace) ----

  /** Read a `net.*` sysctl in this namespace (trimmed text, e.g. '1'). */
  async sysctlGet(key: string): Promise<string> {
    return (await this.exec('sysctl', ['-n', validateSysctlKey(key)])).trim();
  }

  /** Write a `net.*` sysctl in this namespace. */
  sysctlSet(key: string, value: string | number | boolean): Promise<void> {
    return this.sysctlSetMany({ [key]: value });
  }

  /** Write several `net.*` sysctls with one process. */
  async sysctlSetMany(values: Record<string, string | number | boolean>): Promise<void> {
    const args = Object.entries(values).map(([k, v]) => `${validateSysctlKey(k)}=${validateSysctlValue(v)}`);
    if (args.length === 0) return;
    await this.exec('sysctl', ['-q', '-w', ...args]);
  }

  // ---- idempotent helpers ----

  /**
   * Create a bridge/VXLAN/macvlan unless a link of that name exists; an existing one of the same
   * kind (and VNI) gets the spec's mtu/mac/master/up applied, another kind is EEXIST (conflict).
   * Reads first, so the common "already there" case costs one process. Resolves with the link
   * (its `index` is what `masterIndex` wants) and whether it was created.
   */
  async ensureLink(spec: EnsurableLinkSpec): Promise<EnsureResult> {
    if (spec.netns !== undefined) throw invalid('netns', spec.netns, 'use a handle on that namespace instead');
    let link = await this.link(spec.name);
    if (!link) {
      let created = false;
      try {
        await this.linkAdd(spec);
        created = true;
      } catch (err) {
        if (!isExists(err)) throw err; // created concurrently: reconcile below
      }
      link = await this.link(spec.name);
      if (!link) throw new KernelError('EAGAIN', `link ${spec.name} vanished while being ensured`);
      if (created) return { link, created };
    }
    if (link.kind !== spec.kind || (spec.kind === 'vxlan' && link.vxlan?.vni !== spec.vni)) {
      const what = spec.kind === 'vxlan' ? `vxlan ${spec.vni}` : spec.kind;
      throw new KernelError('EEXIST', `link ${spec.name} exists and is not a ${what} (${link.kind ?? 'plain'})`);
    }
    const change: LinkChange = {};
    if (spec.mtu !== undefined && link.mtu !== spec.mtu) change.mtu = spec.mtu;
    if (spec.mac !== undefined && link.mac !== spec.mac.toLowerCase()) change.mac = spec.mac;
    if (spec.master !== undefined && link.master !== spec.master) change.master = spec.master;
    if (spec.up && !link.up) change.up = true;
    if (Object.keys(change).length === 0) return { link, created: false };
    await this.linkSet(spec.name, change);
    return { link: (await this.link(spec.name)) ?? link, created: false };
  }

  /** `ensureLink` for a bridge (up by default). */
  ensureBridge(name: string, opts: Omit<BridgeSpec, 'kind' | 'name'> = {}): Promise<EnsureResult> {
    return this.ensureLink({ up: true, ...opts, kind: 'bridge', name });
  }
}
