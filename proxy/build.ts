// Desired state -> rule objects: networks (masquerade, FORWARD accepts, ICC, isolation, internal),
// published ports, links and service VIPs. Pure; inputs are already validated and canonical.
import {
  bucketChain,
  bucketRange,
  CHAINS,
  affinityList,
  svcChain,
  type Chain,
  type Family,
  type Jump,
  type Proto,
  type Rule,
} from './rules.js';
import { hostCidr } from './validate.js';

/** A network as the firewall sees it (validated). */
export interface NetworkState {
  id: string;
  bridge: string;
  /** Canonical CIDRs, either family. */
  subnets: { cidr: string; family: Family }[];
  masquerade: boolean;
  icc: boolean;
  internal: boolean;
  /** Default host address for IPv4 mappings without one (Docker's host_binding_ipv4). */
  hostBindingIpv4?: string;
}

/** One published port after allocation: hostIp is 0.0.0.0 / :: (wildcard) or a local address. */
export interface PortBinding {
  proto: Proto;
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface LinkState {
  networkId: string;
  bridge: string;
  fromIp: string;
  toIp: string;
  /** The target's exposed ports. */
  ports: { proto: Proto; port: number }[];
}

export interface ServiceState {
  name: string;
  vip: string;
  family: Family;
  ports: { proto: Proto; port: number; targetPort: number }[];
  /** Backend addresses (canonical, same family as the VIP), in a stable order. */
  backends: string[];
  /** Client-IP affinity timeout, when asked for. */
  affinitySeconds?: number;
}

export const isWildcard = (hostIp: string) => hostIp === '0.0.0.0' || hostIp === '::';

/** The jumps from built-in chains, appended after whatever is there already. */
export function baseJumps(family: Family): Jump[] {
  const local: Rule = { dstType: 'LOCAL', target: { kind: 'jump', chain: CHAINS.dnat } };
  // IPv6 has no route_localnet: ::1 cannot be DNAT'd to a container, so OUTPUT leaves it alone.
  const localOut: Rule = family === 4 ? local : { dst: '::1/128', notDst: true, ...local };
  const jumps: Jump[] = [
    { table: 'nat', chain: 'PREROUTING', rule: local },
    { table: 'nat', chain: 'PREROUTING', rule: { target: { kind: 'jump', chain: CHAINS.services } } },
    { table: 'nat', chain: 'OUTPUT', rule: localOut },
    { table: 'nat', chain: 'OUTPUT', rule: { target: { kind: 'jump', chain: CHAINS.services } } },
    { table: 'nat', chain: 'POSTROUTING', rule: { target: { kind: 'jump', chain: CHAINS.postrouting } } },
    { table: 'filter', chain: 'FORWARD', rule: { target: { kind: 'jump', chain: CHAINS.forward } } },
  ];
  if (family === 4) jumps.unshift({ table: 'raw', chain: 'PREROUTING', rule: { target: { kind: 'jump', chain: CHAINS.rawPre } } });
  return jumps;
}

function subnetsOf(n: NetworkState, family: Family): string[] {
  return n.subnets.filter((s) => s.family === family).map((s) => s.cidr);
}

/** The per-network chains of one family: raw drop, POSTROUTING, FORWARD, isolation. */
export function networkChains(networks: readonly NetworkState[], family: Family): Chain[] {
  const nets = networks.filter((n) => subnetsOf(n, family).length > 0);
  // Frames between containers of one ICC network end in ACCEPT whatever comes before (isolation
  // and other networks' rules only see frames crossing bridges; links only accept): decided first,
  // so the bulk of bridged traffic skips the conntrack matches below (issue #7).
  const iccFirst: Rule[] = nets.filter((n) => n.icc).map((n) => ({ in: { name: n.bridge }, out: { name: n.bridge }, target: { kind: 'ACCEPT' } }));
  const forward: Rule[] = [...iccFirst, { target: { kind: 'jump', chain: CHAINS.isolation1 } }, { target: { kind: 'jump', chain: CHAINS.links } }];
  const post: Rule[] = [];
  // Published ports and VIPs are public: traffic DNAT'd to another of our networks (and its
  // replies, which carry the same conntrack state) is not isolation's business.
  const iso1: Rule[] = [{ ctstate: ['DNAT'], target: { kind: 'RETURN' } }];
  const iso2: Rule[] = [];
  for (const n of nets) {
    const br = n.bridge;
    const est: Rule = { out: { name: br }, ctstate: ['RELATED', 'ESTABLISHED'], target: { kind: 'ACCEPT' } };
    if (n.internal) {
      forward.push({ in: { name: br }, out: { name: br, not: true }, target: { kind: 'DROP' } });
      forward.push({ in: { name: br, not: true }, out: { name: br }, target: { kind: 'DROP' } }, est);
    } else {
      forward.push(est, { out: { name: br }, ctstate: ['DNAT'], target: { kind: 'ACCEPT' } });
      forward.push({ in: { name: br }, out: { name: br, not: true }, target: { kind: 'ACCEPT' } });
      // A masqueraded network is reached from outside only through published ports.
      forward.push({ in: { name: br, not: true }, out: { name: br }, target: { kind: n.masquerade ? 'DROP' : 'ACCEPT' } });
    }
    if (!n.icc) forward.push({ in: { name: br }, out: { name: br }, target: { kind: 'DROP' } });
    iso1.push({ in: { name: br }, out: { name: br, not: true }, target: { kind: 'jump', chain: CHAINS.isolation2 } });
    iso2.push({ out: { name: br }, target: { kind: 'DROP' } });
    for (const s of subnetsOf(n, family)) {
      // Hairpin: a container reaching a published port or VIP that lands on its own bridge.
      post.push({ src: s, out: { name: br }, ctstate: ['DNAT'], target: { kind: 'MASQUERADE' } });
      if (n.masquerade && !n.internal) post.push({ src: s, out: { name: br, not: true }, target: { kind: 'MASQUERADE' } });
    }
    // Ports published on 127.0.0.1: the host's loopback source must not reach the container.
    if (family === 4) post.push({ src: '127.0.0.0/8', out: { name: br }, target: { kind: 'MASQUERADE' } });
  }
  const chains: Chain[] = [
    { table: 'nat', name: CHAINS.postrouting, ordered: true, rules: post },
    { table: 'filter', name: CHAINS.forward, ordered: true, rules: forward },
    { table: 'filter', name: CHAINS.isolation1, ordered: true, rules: iso1 },
    { table: 'filter', name: CHAINS.isolation2, ordered: false, rules: iso2 },
  ];
  if (family === 4) {
    // route_localnet is on for our bridges: nothing but lo may send to 127.0.0.0/8
    // (CVE-2020-8558, moby#45610). raw runs before the DNAT that would hide it.
    const drop: Rule = { dst: '127.0.0.0/8', in: { name: 'lo', not: true }, target: { kind: 'DROP' } };
    chains.unshift({ table: 'raw', name: CHAINS.rawPre, ordered: true, rules: [drop] });
  }
  return chains;
}

/** Link rules: the target's exposed ports, both directions, on the shared bridge. */
export function linkRules(l: LinkState): Rule[] {
  const rules: Rule[] = [];
  const br = { name: l.bridge };
  for (const p of l.ports) {
    rules.push({ src: hostCidr(l.fromIp), dst: hostCidr(l.toIp), in: br, out: br, proto: p.proto, dport: p.port, target: { kind: 'ACCEPT' } });
    rules.push({ src: hostCidr(l.toIp), dst: hostCidr(l.fromIp), in: br, out: br, proto: p.proto, sport: p.port, target: { kind: 'ACCEPT' } });
  }
  return rules;
}

/** The DNAT rule of one binding, for its bucket chain. Only local destinations reach it (addrtype jump). */
export function bindingRule(b: PortBinding): Rule {
  return {
    dst: isWildcard(b.hostIp) ? undefined : hostCidr(b.hostIp),
    proto: b.proto,
    dport: b.hostPort,
    target: { kind: 'DNAT', ip: b.containerIp, port: b.containerPort },
  };
}

/** The TSO-DNAT rule sending a bucket's port range to its chain. */
export function dispatchRule(proto: Proto, hostPort: number): Rule {
  return { proto, dport: bucketRange(hostPort), target: { kind: 'jump', chain: bucketChain(proto, hostPort) } };
}

/**
 * A service's TSO-SERVICES rules and one TSO-SVC chain per port (none without backends). Each
 * backend's DNAT sits in the SVC chain itself (no per-backend chain: thousands of chains make
 * iptables-restore slow); affinity keeps a per-backend xt_recent list of client addresses.
 */
export function serviceRules(s: ServiceState): { entry: Rule[]; chains: Chain[] } {
  const entry: Rule[] = [];
  const chains: Chain[] = [];
  if (s.backends.length === 0) return { entry, chains };
  const n = s.backends.length;
  for (const p of s.ports) {
    const svc = svcChain(s.name, p.proto, p.port);
    const dnat = (ip: string): Rule['target'] => ({ kind: 'DNAT', ip, port: p.targetPort });
    const lists = s.backends.map((ip) => affinityList(s.name, p.proto, p.port, ip, p.targetPort));
    const rules: Rule[] = [];
    if (s.affinitySeconds) {
      s.backends.forEach((ip, i) => rules.push({ proto: p.proto, recent: { name: lists[i]!, seconds: s.affinitySeconds! }, target: dnat(ip) }));
    }
    // Backend i takes 1/(n-i) of what the earlier ones left: an even spread overall.
    s.backends.forEach((ip, i) => {
      const r: Rule = { proto: p.proto, probability: i < n - 1 ? 1 / (n - i) : undefined, target: dnat(ip) };
      if (s.affinitySeconds) r.recent = { name: lists[i]!, set: true };
      rules.push(r);
    });
    chains.push({ table: 'nat', name: svc, ordered: true, rules });
    entry.push({ dst: hostCidr(s.vip), proto: p.proto, dport: p.port, target: { kind: 'jump', chain: svc } });
  }
  return { entry, chains };
}
