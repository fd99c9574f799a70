// Batch: a validated list of kernel writes that runs as `ip -batch -` / `bridge -batch -` in one namespace.
// Building a batch does no I/O; consecutive commands for the same tool share one process.
import { invalid } from './errors.js';
import { bridgePortArgs, linkAddArgs, linkSetArgs } from './render-link.js';
import type { AddrOptions, BridgePortChange, FdbSpec, LinkChange, LinkSpec, NeighSpec, RouteSpec } from './types.js';
import {
  assertToken,
  formatCidr,
  parseCidr,
  validateGroup,
  validateIfName,
  validateInt,
  validateIp,
  validateMac,
  validateTable,
  type Family,
} from './validate.js';

/** One line of batch input for a tool. */
export interface Command {
  tool: 'ip' | 'bridge';
  args: string[];
}

const SCOPES = new Set(['global', 'link', 'host', 'site', 'nowhere']);

function scopeArg(scope: string | undefined): string[] {
  if (scope === undefined) return [];
  if (!SCOPES.has(scope)) throw invalid('scope', scope, 'expected global|link|host|site|nowhere');
  return ['scope', scope];
}

/**
 * Builder of kernel writes. Every method validates its input at once (throwing KernelError
 * 'EINVAL') and returns `this`, so calls chain: `b.linkAdd(…).linkSetUp(…)`.
 */
export class Batch {
  private readonly list: Command[] = [];

  /** The commands so far (copies). */
  get commands(): Command[] {
    return this.list.map((c) => ({ tool: c.tool, args: [...c.args] }));
  }

  get size(): number {
    return this.list.length;
  }

  private push(tool: Command['tool'], args: string[]): this {
    for (const t of args) assertToken(t);
    this.list.push({ tool, args });
    return this;
  }

  /** Create a bridge, veth pair, VXLAN or macvlan device. */
  linkAdd(spec: LinkSpec): this {
    return this.push('ip', linkAddArgs(spec));
  }

  /** Change a link: up/down, mtu, mac, master (null = release), rename, group, move to a namespace. */
  linkSet(name: string, change: LinkChange): this {
    for (const line of linkSetArgs(name, change)) this.push('ip', line);
    return this;
  }

  linkSetUp(name: string): this {
    return this.linkSet(name, { up: true });
  }

  linkSetDown(name: string): this {
    return this.linkSet(name, { up: false });
  }

  linkSetMaster(name: string, master: string | null): this {
    return this.linkSet(name, { master });
  }

  linkSetMtu(name: string, mtu: number): this {
    return this.linkSet(name, { mtu });
  }

  linkSetMac(name: string, mac: string): this {
    return this.linkSet(name, { mac });
  }

  /** Rename a link. Kernels before 6.x refuse while it is up (EBUSY): use linkSet({ up: false, name }). */
  linkRename(name: string, newName: string): this {
    return this.linkSet(name, { name: newName });
  }

  /** Move a link to another namespace (path). It arrives down, without addresses. */
  linkSetNetns(name: string, netns: string): this {
    return this.linkSet(name, { netns });
  }

  /** Bridge-port flags on a link enslaved to a bridge (hairpin, learning, …). */
  bridgePortSet(name: string, change: BridgePortChange): this {
    return this.push('ip', bridgePortArgs(name, change));
  }

  /** Delete a link (a veth pair goes as a whole). */
  linkDel(name: string): this {
    return this.push('ip', ['link', 'del', 'dev', validateIfName(name)]);
  }

  /** Delete every link of a group in this namespace (group 0, the default, is refused). */
  linkDeleteGroup(group: number): this {
    return this.push('ip', ['link', 'del', 'group', String(validateGroup(group))]);
  }

  /** Add an IPv4/IPv6 address `addr/len` (EEXIST if present). */
  addrAdd(dev: string, cidr: string, opts: AddrOptions = {}): this {
    return this.push('ip', ['addr', 'add', ...this.addrArgs(dev, cidr, opts)]);
  }

  /** Add or update an address (idempotent). */
  addrReplace(dev: string, cidr: string, opts: AddrOptions = {}): this {
    return this.push('ip', ['addr', 'replace', ...this.addrArgs(dev, cidr, opts)]);
  }

  addrDel(dev: string, cidr: string): this {
    return this.push('ip', ['addr', 'del', formatCidr(parseCidr(cidr, 'address')), 'dev', validateIfName(dev)]);
  }

  /** Remove every address of a device (optionally of one family). */
  addrFlush(dev: string, family?: Family): this {
    const fam = family === undefined ? [] : ['to', family === 4 ? '0.0.0.0/0' : '::/0'];
    return this.push('ip', ['addr', 'flush', 'dev', validateIfName(dev), ...fam]);
  }

  private addrArgs(dev: string, cidr: string, opts: AddrOptions): string[] {
    const c = parseCidr(cidr, 'address');
    const a = [formatCidr(c), 'dev', validateIfName(dev), ...scopeArg(opts.scope)];
    if (opts.noDad && c.family === 6) a.push('nodad');
    return a;
  }

  routeAdd(r: RouteSpec): this {
    return this.push('ip', ['route', 'add', ...this.routeArgs(r)]);
  }

  /** Add or update a route (idempotent). */
  routeReplace(r: RouteSpec): this {
    return this.push('ip', ['route', 'replace', ...this.routeArgs(r)]);
  }

  /** Delete a route; give the same dst/table (and dev/via to pick one of several). */
  routeDel(r: RouteSpec): this {
    return this.push('ip', ['route', 'del', ...this.routeArgs(r)]);
  }

  private routeArgs(r: RouteSpec): string[] {
    if (!r || typeof r !== 'object') throw invalid('route', r, 'required');
    const viaFam = r.via === undefined ? undefined : validateIp(r.via, 'route gateway');
    let dst: string;
    let fam: Family;
    if (r.dst === 'default') {
      fam = viaFam ?? r.family ?? 4;
      dst = fam === 4 ? '0.0.0.0/0' : '::/0';
    } else {
      const c = parseCidr(r.dst, 'route destination');
      fam = c.family;
      dst = formatCidr(c);
    }
    if (viaFam !== undefined && viaFam !== fam) throw invalid('route gateway', r.via, 'family differs from the destination');
    const a = [dst];
    if (r.via !== undefined) a.push('via', r.via);
    if (r.dev !== undefined) a.push('dev', validateIfName(r.dev, 'route dev'));
    if (r.onlink) a.push('onlink');
    a.push(...scopeArg(r.scope));
    if (r.table !== undefined) a.push('table', validateTable(r.table));
    if (r.metric !== undefined) a.push('metric', String(validateInt(r.metric, 0, 0xffffffff, 'route metric')));
    if (r.src !== undefined) {
      if (validateIp(r.src, 'route src') !== fam) throw invalid('route src', r.src, 'family differs from the destination');
      a.push('src', r.src);
    }
    if (r.mtu !== undefined) a.push('mtu', String(validateInt(r.mtu, 68, 65535, 'route mtu')));
    return a;
  }

  neighAdd(n: NeighSpec): this {
    return this.push('ip', ['neigh', 'add', ...this.neighArgs(n)]);
  }

  /** Add or update a neighbour (ARP/NDP) entry; permanent unless `permanent: false`. */
  neighReplace(n: NeighSpec): this {
    return this.push('ip', ['neigh', 'replace', ...this.neighArgs(n)]);
  }

  neighDel(n: Pick<NeighSpec, 'dst' | 'dev'>): this {
    validateIp(n.dst, 'neighbour address');
    return this.push('ip', ['neigh', 'del', n.dst, 'dev', validateIfName(n.dev)]);
  }

  private neighArgs(n: NeighSpec): string[] {
    validateIp(n.dst, 'neighbour address');
    const a = [n.dst, 'lladdr', validateMac(n.lladdr, 'neighbour lladdr')];
    a.push('dev', validateIfName(n.dev), 'nud', n.permanent === false ? 'reachable' : 'permanent');
    return a;
  }

  /** Add an FDB entry (EEXIST if present). */
  fdbAdd(f: FdbSpec): this {
    return this.push('bridge', ['fdb', 'add', ...this.fdbArgs(f, true)]);
  }

  /** Add another entry for the same MAC (e.g. more flood destinations on 00:00:00:00:00:00). */
  fdbAppend(f: FdbSpec): this {
    return this.push('bridge', ['fdb', 'append', ...this.fdbArgs(f, true)]);
  }

  /** Add or update an FDB entry (idempotent). */
  fdbReplace(f: FdbSpec): this {
    return this.push('bridge', ['fdb', 'replace', ...this.fdbArgs(f, true)]);
  }

  fdbDel(f: FdbSpec): this {
    return this.push('bridge', ['fdb', 'del', ...this.fdbArgs(f, false)]);
  }

  private fdbArgs(f: FdbSpec, withState: boolean): string[] {
    if (!f || typeof f !== 'object') throw invalid('fdb entry', f, 'required');
    const a = [validateMac(f.mac, 'fdb mac'), 'dev', validateIfName(f.dev, 'fdb dev')];
    if (f.dst !== undefined) {
      validateIp(f.dst, 'fdb dst');
      a.push('dst', f.dst);
    }
    if (f.vni !== undefined) a.push('vni', String(validateInt(f.vni, 0, 0xffffff, 'fdb vni')));
    if (f.port !== undefined) a.push('port', String(validateInt(f.port, 1, 65535, 'fdb port')));
    const target = f.target ?? (f.dst !== undefined ? 'self' : 'master');
    if (target !== 'self' && target !== 'master') throw invalid('fdb target', target, 'expected self|master');
    a.push(target);
    if (withState) {
      const state = f.state ?? (target === 'self' ? 'permanent' : 'static');
      if (state !== 'permanent' && state !== 'static') throw invalid('fdb state', state, 'expected permanent|static');
      a.push(state);
    }
    return a;
  }
}
