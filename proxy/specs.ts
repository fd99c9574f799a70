// The facade's input types (what drivers pass) and their validation into canonical state.
// Anything that fails here is a bad-request ProxyError naming the field and the value.
import type { LinkState, NetworkState, ServiceState } from './build.js';
import { ProxyError } from './errors.js';
import type { PortRequest } from './ports.js';
import * as v from './validate.js';
import type { Proto } from './validate.js';

export interface NetworkSpec {
  id: string;
  /** The Linux bridge carrying the network on this host. */
  bridge: string;
  /** CIDRs of either family. */
  subnets: string[];
  /** Masquerade traffic leaving by another interface (default true). */
  masquerade?: boolean;
  /** Inter-container communication on the bridge (default true). */
  icc?: boolean;
  /** No traffic in or out of the bridge (default false). */
  internal?: boolean;
  /** Default host address for IPv4 mappings that name none. */
  hostBindingIpv4?: string;
}

export interface PublishSpec {
  networkId: string;
  containerIp: string;
  /** The endpoint's IPv6 address, when it has one (wildcard mappings then cover :: too). */
  containerIpv6?: string;
  mappings: PortRequest[];
}

export interface LinkSpec {
  networkId: string;
  fromEndpoint: string;
  toEndpoint: string;
  fromIp: string;
  toIp: string;
  /** The target's exposed ports. */
  ports: { proto: Proto; port: number }[];
}

export interface ServiceSpec {
  name: string;
  vip: string;
  /** targetPort defaults to port. */
  ports: { proto: Proto; port: number; targetPort?: number }[];
  /** Backend addresses, same family as the VIP. */
  backends: string[];
  /** Client-IP affinity: the same client keeps its backend for this many seconds. */
  affinitySeconds?: number;
}

const bool = (x: unknown, field: string, dflt: boolean): boolean => {
  if (x === undefined) return dflt;
  if (typeof x !== 'boolean') throw new ProxyError('invalid-spec', `${field}: ${JSON.stringify(x)} is not a boolean`);
  return x;
};

function array(x: unknown, field: string): unknown[] {
  if (!Array.isArray(x)) throw new ProxyError('invalid-spec', `${field} is not a list`);
  return x;
}

export function checkNetwork(spec: NetworkSpec): NetworkState {
  const subnets = array(spec?.subnets, 'subnets').map((s, i) => {
    const c = v.cidr(s, `subnets[${i}]`);
    return { cidr: c.cidr, family: c.family };
  });
  if (subnets.length === 0) throw new ProxyError('invalid-spec', `network ${JSON.stringify(spec.id)}: no subnet`);
  const n: NetworkState = {
    id: v.objectName(spec.id, 'network id'),
    bridge: v.ifname(spec.bridge, 'bridge'),
    subnets,
    masquerade: bool(spec.masquerade, 'masquerade', true),
    icc: bool(spec.icc, 'icc', true),
    internal: bool(spec.internal, 'internal', false),
  };
  if (spec.hostBindingIpv4 !== undefined && spec.hostBindingIpv4 !== '') {
    const a = v.ip(spec.hostBindingIpv4, 'hostBindingIpv4');
    if (a.family !== 4) throw new ProxyError('invalid-address', `hostBindingIpv4: ${spec.hostBindingIpv4} is not IPv4`);
    n.hostBindingIpv4 = a.addr;
  }
  return n;
}

/** An address of the network's subnets (canonical), or an error naming the field. */
export function memberIp(n: NetworkState, value: unknown, field: string): string {
  const a = v.ip(value, field).addr;
  if (!n.subnets.some((s) => v.contains(s.cidr, a))) {
    throw new ProxyError('invalid-address', `${field}: ${a} is not in network ${n.id} (${n.subnets.map((s) => s.cidr).join(', ')})`);
  }
  return a;
}

export function checkLink(n: NetworkState, spec: LinkSpec): LinkState & { id: string } {
  const from = v.objectName(spec.fromEndpoint, 'fromEndpoint');
  const to = v.objectName(spec.toEndpoint, 'toEndpoint');
  const fromIp = memberIp(n, spec.fromIp, 'fromIp');
  const toIp = memberIp(n, spec.toIp, 'toIp');
  if (v.familyOf(fromIp) !== v.familyOf(toIp)) throw new ProxyError('invalid-address', `link ${from} -> ${to}: addresses of different families`);
  const ports = array(spec.ports, 'ports').map((p, i) => {
    const o = p as { proto?: unknown; port?: unknown };
    return { proto: v.proto(o?.proto ?? 'tcp', `ports[${i}].proto`), port: v.port(o?.port, `ports[${i}].port`) };
  });
  return { id: `${n.id}/${from}/${to}`, networkId: n.id, bridge: n.bridge, fromIp, toIp, ports };
}

export function checkService(spec: ServiceSpec): ServiceState {
  const name = v.objectName(spec?.name, 'service name');
  const vip = v.ip(spec.vip, `service ${name} vip`);
  const ports = array(spec.ports, `service ${name} ports`).map((p, i) => {
    const o = p as { proto?: unknown; port?: unknown; targetPort?: unknown };
    const port = v.port(o?.port, `service ${name} ports[${i}].port`);
    return { proto: v.proto(o?.proto ?? 'tcp', `service ${name} ports[${i}].proto`), port, targetPort: v.port(o?.targetPort ?? port, `service ${name} ports[${i}].targetPort`) };
  });
  if (ports.length === 0) throw new ProxyError('invalid-spec', `service ${name}: no port`);
  if (new Set(ports.map((p) => `${p.proto}/${p.port}`)).size !== ports.length) {
    throw new ProxyError('invalid-spec', `service ${name}: a protocol/port is listed twice`);
  }
  const seen = new Set<string>();
  const backends: string[] = [];
  array(spec.backends, `service ${name} backends`).forEach((b, i) => {
    const a = v.ip(b, `service ${name} backends[${i}]`);
    if (a.family !== vip.family) throw new ProxyError('invalid-address', `service ${name} backends[${i}]: ${a.addr} is not of the VIP's family`);
    if (!seen.has(a.addr)) backends.push(a.addr);
    seen.add(a.addr);
  });
  let affinitySeconds: number | undefined;
  if (spec.affinitySeconds !== undefined) {
    const s = spec.affinitySeconds;
    if (!Number.isInteger(s) || s < 1 || s > 86400) {
      throw new ProxyError('invalid-spec', `service ${name} affinitySeconds: ${JSON.stringify(s)} is not 1..86400`);
    }
    affinitySeconds = s;
  }
  // A stable order: the same set of backends renders the same chains.
  backends.sort();
  return { name, vip: vip.addr, family: vip.family, ports, backends, affinitySeconds };
}
