// Pure rendering for the nft backend: the same rule objects as iptables (build.ts) become rules
// of one `table inet tsoverlay`; published ports, service VIPs and links become map/set elements.
// Every value is re-validated here, as in render.ts; nothing here spawns.
import { createHash } from 'node:crypto';
import { baseJumps, isWildcard, type LinkState, type PortBinding, type ServiceState } from './build.js';
import { ProxyError } from './errors.js';
import { affinityList, CHAINS, svcChain, type Chain, type Family, type Rule, type Table, type Target } from './rules.js';
import * as v from './validate.js';

/** The table (family inet: one table, one transaction for IPv4 and IPv6). */
export const NFT_TABLE = 'inet tsoverlay';

/**
 * Bit set on every packet our forward chain accepts, and accepted again by one rule appended to
 * iptables' filter FORWARD: a verdict in our table cannot override a DROP policy in another
 * table at the same hook (Docker sets one), so the mark carries our accept there.
 */
export const ACCEPT_MARK = 0x2000;
export const ACCEPT_MARK_HEX = '0x00002000';

/** A chain of our table; `base` is its hook declaration. */
export interface NftChain {
  name: string;
  base?: string;
  rules: string[];
}

/** One element: `key` (and `value` for maps) as nft input text. */
export interface NftElem {
  set: string;
  key: string;
  value?: string;
}

/** An element's identity: its key text without quotes, as read back from `nft -j`. */
export const elemId = (key: string) => key.replaceAll('"', '');

/** The base chains: nat after iptables' own nat chains (CVE-2019-9946), filter before iptables' FORWARD so the mark is set in time. */
export const BASE: Record<string, string> = {
  'raw-prerouting': 'type filter hook prerouting priority raw; policy accept;',
  'nat-prerouting': 'type nat hook prerouting priority dstnat + 10; policy accept;',
  'nat-output': 'type nat hook output priority -90; policy accept;',
  'nat-postrouting': 'type nat hook postrouting priority srcnat + 10; policy accept;',
  'filter-forward': 'type filter hook forward priority filter - 10; policy accept;',
};

const IP: Record<Family, string> = { 4: 'ip', 6: 'ip6' };
const ADDR: Record<Family, string> = { 4: 'ipv4_addr', 6: 'ipv6_addr' };

/** The fixed maps and sets: published ports (by address, and wildcard), service VIPs, link tuples. */
export function staticSets(): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of [4, 6] as Family[]) {
    m.set(`pub${f}`, `map pub${f} { type ${ADDR[f]} . inet_proto . inet_service : ${ADDR[f]} . inet_service; }`);
    m.set(`pub${f}any`, `map pub${f}any { type inet_proto . inet_service : ${ADDR[f]} . inet_service; }`);
    m.set(`svc${f}`, `map svc${f} { type ${ADDR[f]} . inet_proto . inet_service : verdict; }`);
    m.set(`link${f}d`, `set link${f}d { type ${ADDR[f]} . ${ADDR[f]} . ifname . inet_proto . inet_service; }`);
    m.set(`link${f}s`, `set link${f}s { type ${ADDR[f]} . ${ADDR[f]} . ifname . inet_proto . inet_service; }`);
  }
  return m;
}

/** Our chain for an iptables chain of ours: TSO-FORWARD (filter) -> filter-forward. */
export function nftChainName(table: Table, name: string): string {
  if (name === CHAINS.dnat) return 'published';
  if (name === CHAINS.services) return 'services';
  return `${table}-${v.chainName(name).slice(4).toLowerCase()}`;
}

function fail(what: string, value: unknown): never {
  throw new ProxyError('internal', `refusing to render ${what} ${JSON.stringify(value)} for nft`);
}

function addr(c: string, family: Family, what: string): string {
  const r = v.cidr(c, what);
  if (r.cidr !== c || r.family !== family) fail(what, c);
  return r.prefix === (family === 4 ? 32 : 128) ? c.slice(0, c.indexOf('/')) : c;
}

const hostPort = (ip: string, port: number, family: Family) => (family === 4 ? `${ip}:${port}` : `[${ip}]:${port}`);

function checkedIp(ip: string, family: Family, what: string): string {
  const a = v.ip(ip, what);
  if (a.addr !== ip || a.family !== family) fail(what, ip);
  return ip;
}

function targetText(t: Target, family: Family, table: Table, hasProto: boolean): string {
  switch (t.kind) {
    case 'ACCEPT':
      return table === 'filter' ? `meta mark set meta mark | ${ACCEPT_MARK_HEX} accept` : 'accept';
    case 'DROP':
    case 'RETURN':
    case 'MASQUERADE':
      return t.kind.toLowerCase();
    case 'jump':
      return `jump ${nftChainName(table, t.chain)}`;
    case 'DNAT':
      if (!hasProto) fail('DNAT without a protocol', t);
      return `dnat ${IP[family]} to ${hostPort(checkedIp(t.ip, family, 'DNAT address'), v.port(t.port, 'DNAT port'), family)}`;
    case 'SNAT':
      return `snat ${IP[family]} to ${checkedIp(t.ip, family, 'SNAT address')}`;
    default:
      return fail('target', t);
  }
}

function portsText(p: number | readonly [number, number]): string {
  if (typeof p === 'number') return String(v.port(p, 'port'));
  if (v.port(p[0], 'port') > v.port(p[1], 'port')) fail('port range', p);
  return `${p[0]}-${p[1]}`;
}

const CT_STATE = new Set(['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED']);

/** One rule of `table` (the iptables table the rule object was built for) as nft text. */
export function renderNftRule(rule: Rule, family: Family, table: Table): string {
  const out: string[] = [];
  const ip = IP[family];
  if (rule.src === undefined && rule.dst === undefined) out.push(`meta nfproto ipv${family}`);
  if (rule.src !== undefined) out.push(`${ip} saddr ${addr(rule.src, family, 'source')}`);
  if (rule.dst !== undefined) out.push(`${ip} daddr ${rule.notDst ? '!= ' : ''}${addr(rule.dst, family, 'destination')}`);
  if (rule.in) out.push(`iifname ${rule.in.not ? '!= ' : ''}"${v.ifname(rule.in.name, 'in-interface')}"`);
  if (rule.out) out.push(`oifname ${rule.out.not ? '!= ' : ''}"${v.ifname(rule.out.name, 'out-interface')}"`);
  if (rule.proto !== undefined) {
    const p = v.proto(rule.proto);
    if (rule.dport === undefined && rule.sport === undefined) out.push(`meta l4proto ${p}`);
    if (rule.sport !== undefined) out.push(`${p} sport ${portsText(rule.sport)}`);
    if (rule.dport !== undefined) out.push(`${p} dport ${portsText(rule.dport)}`);
  } else if (rule.dport !== undefined || rule.sport !== undefined) fail('port match without protocol', rule);
  if (rule.dstType !== undefined) {
    if (rule.dstType !== 'LOCAL') fail('address type', rule.dstType);
    out.push('fib daddr type local');
  }
  if (rule.ctstate !== undefined) {
    const states = rule.ctstate.filter((s) => CT_STATE.has(s)).map((s) => s.toLowerCase());
    const status = rule.ctstate.filter((s) => s === 'DNAT' || s === 'SNAT').map((s) => s.toLowerCase());
    if (states.length + status.length !== rule.ctstate.length || rule.ctstate.length === 0 || (states.length && status.length)) fail('ctstate', rule.ctstate);
    out.push(states.length ? `ct state ${states.join(',')}` : `ct status ${status.join(',')}`);
  }
  if (rule.probability !== undefined || rule.recent !== undefined) fail('iptables-only match', rule);
  out.push(targetText(rule.target, family, table, rule.proto !== undefined));
  return out.join(' ');
}

/** A network-level chain of both families as one nft chain (IPv4 rules, then IPv6 rules). */
export function mergeChains(v4: Chain | undefined, v6: Chain | undefined): NftChain {
  const c = (v4 ?? v6)!;
  const name = nftChainName(c.table, c.name);
  const rules = [...(v4?.rules.map((r) => renderNftRule(r, 4, c.table)) ?? []), ...(v6?.rules.map((r) => renderNftRule(r, 6, c.table)) ?? [])];
  return BASE[name] ? { name, base: BASE[name], rules } : { name, rules };
}

/** The chains whose content never changes: hooks into published ports and VIPs, the maps' lookups, links. */
export function staticChains(): NftChain[] {
  const pre: string[] = [];
  const out: string[] = [];
  for (const f of [4, 6] as Family[]) {
    for (const j of baseJumps(f)) {
      if (j.rule.target.kind !== 'jump' || (j.rule.target.chain !== CHAINS.dnat && j.rule.target.chain !== CHAINS.services)) continue;
      (j.chain === 'PREROUTING' ? pre : out).push(renderNftRule(j.rule, f, 'nat'));
    }
  }
  const published: string[] = [];
  const services: string[] = [];
  const links: string[] = [];
  const accept = targetText({ kind: 'ACCEPT' }, 4, 'filter', false);
  for (const f of [4, 6] as Family[]) {
    const ip = IP[f];
    published.push(`dnat ${ip} to ${ip} daddr . meta l4proto . th dport map @pub${f}`);
    published.push(`meta nfproto ipv${f} dnat ${ip} to meta l4proto . th dport map @pub${f}any`);
    services.push(`${ip} daddr . meta l4proto . th dport vmap @svc${f}`);
    links.push(`${ip} saddr . ${ip} daddr . iifname . meta l4proto . th dport @link${f}d ${accept}`);
    links.push(`${ip} saddr . ${ip} daddr . iifname . meta l4proto . th sport @link${f}s ${accept}`);
  }
  return [
    { name: 'nat-prerouting', base: BASE['nat-prerouting'], rules: pre },
    { name: 'nat-output', base: BASE['nat-output'], rules: out },
    { name: 'published', rules: published },
    { name: 'services', rules: services },
    { name: 'filter-links', rules: links },
  ];
}

/** The map element of one published port. */
export function bindingElem(b: PortBinding): NftElem {
  const f = v.familyOf(b.containerIp);
  const target = `${checkedIp(b.containerIp, f, 'container address')} . ${v.port(b.containerPort, 'container port')}`;
  const pp = `${v.proto(b.proto)} . ${v.port(b.hostPort, 'host port')}`;
  if (isWildcard(b.hostIp)) return { set: `pub${f}any`, key: pp, value: target };
  return { set: `pub${f}`, key: `${checkedIp(b.hostIp, f, 'host address')} . ${pp}`, value: target };
}

/** A link's set elements: the target's ports one way (dport), their answers back (sport). */
export function linkElems(l: LinkState): NftElem[] {
  const f = v.familyOf(l.fromIp);
  const from = checkedIp(l.fromIp, f, 'link source');
  const to = checkedIp(l.toIp, f, 'link target');
  const br = `"${v.ifname(l.bridge)}"`;
  return l.ports.flatMap((p) => {
    const tail = `${br} . ${v.proto(p.proto)} . ${v.port(p.port, 'link port')}`;
    return [
      { set: `link${f}d`, key: `${from} . ${to} . ${tail}` },
      { set: `link${f}s`, key: `${to} . ${from} . ${tail}` },
    ];
  });
}

const hash16 = (parts: readonly (string | number)[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);

/** A service's VIP elements, its chains (svc-… per port, sep-… per backend with affinity) and affinity sets. */
export function serviceObjects(s: ServiceState): { elems: NftElem[]; chains: NftChain[]; sets: Map<string, string> } {
  const elems: NftElem[] = [];
  const chains: NftChain[] = [];
  const sets = new Map<string, string>();
  if (s.backends.length === 0) return { elems, chains, sets };
  const f = s.family;
  const ip = IP[f];
  const n = s.backends.length;
  for (const p of s.ports) {
    const proto = v.proto(p.proto);
    const svc = `svc-${svcChain(s.name, proto, p.port).slice(8).toLowerCase()}`;
    const backends = s.backends.map((b) => checkedIp(b, f, 'backend'));
    const target = v.port(p.targetPort, 'target port');
    const rules: string[] = [];
    if (!s.affinitySeconds) {
      rules.push(n === 1 ? `meta l4proto ${proto} dnat ${ip} to ${hostPort(backends[0]!, target, f)}` : `meta l4proto ${proto} dnat ${ip} to numgen random mod ${n} map { ${backends.map((b, i) => `${i} : ${b} . ${target}`).join(', ')} }`);
    } else {
      const secs = s.affinitySeconds;
      if (!Number.isInteger(secs) || secs < 1 || secs > 86400 * 7) fail('affinity seconds', secs);
      const ids = backends.map((b) => hash16([affinityList(s.name, proto, p.port, b, target), secs]));
      ids.forEach((id, i) => {
        sets.set(`aff-${id}`, `set aff-${id} { type ${ADDR[f]}; flags dynamic,timeout; timeout ${secs}s; }`);
        rules.push(`${ip} saddr @aff-${id} goto sep-${id}`);
        chains.push({ name: `sep-${id}`, rules: [`meta l4proto ${proto} update @aff-${id} { ${ip} saddr } dnat ${ip} to ${hostPort(backends[i]!, target, f)}`] });
      });
      rules.push(n === 1 ? `goto sep-${ids[0]}` : `numgen random mod ${n} vmap { ${ids.map((id, i) => `${i} : goto sep-${id}`).join(', ')} }`);
    }
    chains.push({ name: svc, rules });
    elems.push({ set: `svc${f}`, key: `${checkedIp(s.vip, f, 'VIP')} . ${proto} . ${v.port(p.port, 'service port')}`, value: `goto ${svc}` });
  }
  return { elems, chains, sets };
}

/** The comment tagging a rule: a hash of its text, so a dump compares without re-parsing nft's output. */
export function ruleTag(rule: string): string {
  return createHash('sha256').update(rule).digest('hex').slice(0, 12);
}
