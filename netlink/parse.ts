// Parsers from iproute2's `-json` output to the typed records of types.ts (pure, no I/O).
// iproute2 omits fields freely (e.g. `table` for main, `ifname` under `fdb show dev X`): defaults live here.
import { KernelError } from './errors.js';
import type { Address, FdbEntry, Link, Neighbour, Route } from './types.js';
import type { Family } from './validate.js';

type Obj = Record<string, unknown>;

/** Parse a JSON array printed by `ip -json`/`bridge -json` (empty output = empty list). */
export function parseJsonArray(text: string, what: string): Obj[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v)) return v.filter((x): x is Obj => typeof x === 'object' && x !== null);
  } catch {
    // fall through
  }
  throw new KernelError('EKERNEL', `unexpected ${what} output from iproute2: ${t.slice(0, 200)}`);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null ? (v as Obj) : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function parseGroup(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'default' || v === undefined) return 0;
  const n = Number(v);
  return Number.isInteger(n) ? n : -1;
}

function kindDetails(link: Link, info: Obj | undefined): void {
  if (!info) return;
  link.kind = str(info.info_kind);
  const data = obj(info.info_data);
  if (link.kind === 'vxlan' && data) {
    link.vxlan = {
      vni: num(data.id) ?? 0,
      local: str(data.local) ?? str(data.local6),
      port: num(data.port),
      learning: data.learning === true,
      dev: str(data.link),
    };
  }
  if (link.kind === 'macvlan' && data) link.macvlan = { mode: str(data.mode) ?? '' };
  const slave = obj(info.info_slave_data);
  if (info.info_slave_kind === 'bridge' && slave) {
    link.bridgePort = {
      hairpin: slave.hairpin === true,
      learning: slave.learning === true,
      state: str(slave.state),
      neighSuppress: slave.neigh_suppress === true,
    };
  }
}

/** `ip -json -details link show` → Link[] (iproute2 prints `{}` for links a group filter skips). */
export function parseLinks(text: string): Link[] {
  return parseJsonArray(text, 'link').filter((o) => typeof o.ifname === 'string').map((o) => {
    const flags = strs(o.flags);
    const link: Link = {
      index: num(o.ifindex) ?? 0,
      name: str(o.ifname) ?? '',
      mtu: num(o.mtu) ?? 0,
      mac: str(o.address),
      up: flags.includes('UP'),
      operState: str(o.operstate) ?? 'UNKNOWN',
      flags,
      master: str(o.master),
      group: parseGroup(o.group),
      parent: str(o.link),
      linkNetnsId: num(o.link_netnsid),
      raw: o,
    };
    kindDetails(link, obj(o.linkinfo));
    return link;
  });
}

/** `ip -json addr show` → Address[] (one per address, across devices). */
export function parseAddresses(text: string): Address[] {
  const out: Address[] = [];
  for (const dev of parseJsonArray(text, 'address')) {
    const name = str(dev.ifname) ?? '';
    for (const a of Array.isArray(dev.addr_info) ? dev.addr_info : []) {
      const ai = obj(a);
      const address = ai && str(ai.local);
      if (!ai || !address || (ai.family !== 'inet' && ai.family !== 'inet6')) continue;
      const prefixLen = num(ai.prefixlen) ?? 0;
      const family: Family = ai.family === 'inet' ? 4 : 6;
      out.push({ dev: name, family, address, prefixLen, cidr: `${address}/${prefixLen}`, scope: str(ai.scope) ?? 'global', raw: ai });
    }
  }
  return out;
}

/** `ip -json -4|-6 route show table T` → Route[]; iproute2 omits `table` when it is T (or main for 'all'). */
export function parseRoutes(text: string, family: Family, table = 'main'): Route[] {
  return parseJsonArray(text, 'route').map((o) => ({
    family,
    dst: str(o.dst) ?? 'default',
    via: str(o.gateway),
    dev: str(o.dev),
    table: str(o.table) ?? table,
    scope: str(o.scope),
    protocol: str(o.protocol),
    metric: num(o.metric),
    src: str(o.prefsrc),
    type: str(o.type),
    onlink: strs(o.flags).includes('onlink'),
    raw: o,
  }));
}

/** `ip -json neigh show` → Neighbour[]. */
export function parseNeighbours(text: string): Neighbour[] {
  return parseJsonArray(text, 'neighbour').map((o) => {
    const dst = str(o.dst) ?? '';
    const state = strs(o.state);
    return {
      family: dst.includes(':') ? 6 : 4,
      dst,
      dev: str(o.dev) ?? '',
      lladdr: str(o.lladdr),
      state,
      permanent: state.includes('PERMANENT'),
      raw: o,
    };
  });
}

/** `bridge -json fdb show [dev X]` → FdbEntry[]; `dev` fills the name iproute2 omits when filtering. */
export function parseFdb(text: string, dev?: string): FdbEntry[] {
  return parseJsonArray(text, 'fdb').map((o) => ({
    mac: str(o.mac) ?? '',
    dev: str(o.ifname) ?? dev ?? '',
    dst: str(o.dst),
    master: str(o.master),
    self: strs(o.flags).includes('self'),
    state: str(o.state),
    vni: num(o.vni),
    raw: o,
  }));
}
