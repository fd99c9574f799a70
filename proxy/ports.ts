// Port-mapping requests from their three wire forms: Docker's CLI `-p` text, Docker's
// portmap option (CreateEndpoint/ProgramExternalConnectivity) and CNI runtimeConfig.portMappings.
// Everything is validated here; a bad value is a bad-request ProxyError naming field and value.
import { ProxyError } from './errors.js';
import * as v from './validate.js';
import type { Proto } from './validate.js';

/** One requested mapping before host ports are chosen. */
export interface PortRequest {
  proto: Proto;
  containerPort: number;
  /** '' = every address of the family (0.0.0.0 and/or ::); else a canonical address. */
  hostIp: string;
  /** 0 = any free port of the allocator's range; else the first acceptable host port. */
  hostPort: number;
  /** Last acceptable host port (== hostPort for a fixed port; 0 with hostPort 0). */
  hostPortEnd: number;
}

function range(text: string, field: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new ProxyError('invalid-port', `${field}: ${JSON.stringify(text)} is not a port or a port range`);
  const a = v.port(Number(m[1]), field);
  const b = m[2] === undefined ? a : v.port(Number(m[2]), field);
  if (b < a) throw new ProxyError('invalid-range', `${field}: range ${JSON.stringify(text)} ends before it starts`);
  return [a, b];
}

function hostIpOf(text: string, field: string): string {
  if (text === '') return '';
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  return v.ip(bare, field).addr;
}

/**
 * Expand host and container ranges into requests: equal sizes map 1:1; a host range for one
 * container port means "any free port of that range" (as Docker does); anything else is refused.
 */
function expand(proto: Proto, hostIp: string, host: [number, number] | undefined, ctr: [number, number], spec: string): PortRequest[] {
  const out: PortRequest[] = [];
  const nCtr = ctr[1] - ctr[0];
  if (!host) {
    for (let p = ctr[0]; p <= ctr[1]; p++) out.push({ proto, containerPort: p, hostIp, hostPort: 0, hostPortEnd: 0 });
  } else if (nCtr === 0) {
    out.push({ proto, containerPort: ctr[0], hostIp, hostPort: host[0], hostPortEnd: host[1] });
  } else if (host[1] - host[0] === nCtr) {
    for (let i = 0; i <= nCtr; i++) out.push({ proto, containerPort: ctr[0] + i, hostIp, hostPort: host[0] + i, hostPortEnd: host[0] + i });
  } else {
    throw new ProxyError('invalid-range', `port spec ${JSON.stringify(spec)}: host and container ranges differ in size`);
  }
  return out;
}

/**
 * Parse one Docker CLI publish spec: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`,
 * `ip::containerPort` (random host port), IPv6 host addresses in brackets.
 */
export function parsePortSpec(spec: string): PortRequest[] {
  if (typeof spec !== 'string' || spec.length === 0 || spec.length > 128) {
    throw new ProxyError('invalid-spec', `port spec ${JSON.stringify(spec)} is empty or too long`);
  }
  const slash = spec.lastIndexOf('/');
  const proto = slash >= 0 ? v.proto(spec.slice(slash + 1), `protocol in ${JSON.stringify(spec)}`) : 'tcp';
  const body = slash >= 0 ? spec.slice(0, slash) : spec;
  let ipText = '';
  let rest = body;
  if (body.startsWith('[')) {
    const close = body.indexOf(']:');
    if (close < 0) throw new ProxyError('invalid-spec', `port spec ${JSON.stringify(spec)}: unterminated [address]`);
    ipText = body.slice(0, close + 1);
    rest = body.slice(close + 2);
  }
  const parts = rest.split(':');
  let hostText: string | undefined;
  let ctrText: string;
  if (ipText) {
    if (parts.length !== 2) throw new ProxyError('invalid-spec', `port spec ${JSON.stringify(spec)} is not [ip]:hostPort:containerPort`);
    [hostText, ctrText] = parts as [string, string];
  } else if (parts.length === 1) ctrText = parts[0]!;
  else if (parts.length === 2) [hostText, ctrText] = parts as [string, string];
  else if (parts.length === 3) [ipText, hostText, ctrText] = parts as [string, string, string];
  else throw new ProxyError('invalid-spec', `port spec ${JSON.stringify(spec)} has too many ':' (IPv6 addresses go in [])`);
  const hostIp = hostIpOf(ipText, `host address in ${JSON.stringify(spec)}`);
  const ctr = range(ctrText, `container port in ${JSON.stringify(spec)}`);
  const host = hostText === undefined || hostText === '' ? undefined : range(hostText, `host port in ${JSON.stringify(spec)}`);
  return expand(proto, hostIp, host, ctr, spec);
}

function record(x: unknown, field: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ProxyError('invalid-spec', `${field} is not an object`);
  return x as Record<string, unknown>;
}

function list(x: unknown, field: string): unknown[] {
  if (x === null || x === undefined) return [];
  if (!Array.isArray(x)) throw new ProxyError('invalid-spec', `${field} is not a list`);
  return x;
}

/**
 * Docker's `com.docker.network.portmap`: [{Proto: 6|17|132, IP, Port, HostIP, HostPort,
 * HostPortEnd}]. HostPort 0 = random; HostPortEnd > HostPort = any free port of that range.
 */
export function fromDockerPortMap(wire: unknown): PortRequest[] {
  return list(wire, 'portmap').map((item, i) => {
    const f = `portmap[${i}]`;
    const o = record(item, f);
    const proto = v.proto(o.Proto ?? 'tcp', `${f}.Proto`);
    const containerPort = v.port(o.Port, `${f}.Port`);
    const hostIp = hostIpOf(typeof o.HostIP === 'string' ? o.HostIP : o.HostIP == null ? '' : String(o.HostIP), `${f}.HostIP`);
    const hostPort = v.port(o.HostPort ?? 0, `${f}.HostPort`, true);
    const end = o.HostPortEnd === undefined || o.HostPortEnd === 0 ? hostPort : v.port(o.HostPortEnd, `${f}.HostPortEnd`);
    if (end < hostPort || (hostPort === 0 && end !== 0)) {
      throw new ProxyError('invalid-range', `${f}: HostPortEnd ${end} is before HostPort ${hostPort}`);
    }
    return { proto, containerPort, hostIp, hostPort, hostPortEnd: end };
  });
}

/** CNI `runtimeConfig.portMappings`: [{hostPort, containerPort, protocol, hostIP}]. */
export function fromCniPortMappings(wire: unknown): PortRequest[] {
  return list(wire, 'portMappings').map((item, i) => {
    const f = `portMappings[${i}]`;
    const o = record(item, f);
    const hostPort = v.port(o.hostPort, `${f}.hostPort`);
    return {
      proto: v.proto(o.protocol ?? 'tcp', `${f}.protocol`),
      containerPort: v.port(o.containerPort, `${f}.containerPort`),
      hostIp: hostIpOf(o.hostIP == null ? '' : String(o.hostIP), `${f}.hostIP`),
      hostPort,
      hostPortEnd: hostPort,
    };
  });
}

/**
 * `-P`: every exposed port gets a random host port. Accepts Docker's exposedports wire
 * form [{Proto, Port}] or [{proto, port}].
 */
export function publishAll(exposed: unknown, hostIp = ''): PortRequest[] {
  const ip = hostIpOf(hostIp, 'host address');
  return list(exposed, 'exposed ports').map((item, i) => {
    const o = record(item, `exposed[${i}]`);
    return {
      proto: v.proto(o.Proto ?? o.proto ?? 'tcp', `exposed[${i}].Proto`),
      containerPort: v.port(o.Port ?? o.port, `exposed[${i}].Port`),
      hostIp: ip,
      hostPort: 0,
      hostPortEnd: 0,
    };
  });
}

/** Re-validate a request built elsewhere (the facade's entry check). */
export function checkRequest(r: PortRequest, field: string): PortRequest {
  const o = record(r, field);
  const hostPort = v.port(o.hostPort ?? 0, `${field}.hostPort`, true);
  const hostPortEnd = v.port(o.hostPortEnd ?? hostPort, `${field}.hostPortEnd`, true);
  if (hostPortEnd < hostPort || (hostPort === 0 && hostPortEnd !== 0)) {
    throw new ProxyError('invalid-range', `${field}: host port range ${hostPort}-${hostPortEnd} ends before it starts`);
  }
  return {
    proto: v.proto(o.proto, `${field}.proto`),
    containerPort: v.port(o.containerPort, `${field}.containerPort`),
    hostIp: hostIpOf(o.hostIp == null ? '' : String(o.hostIp), `${field}.hostIp`),
    hostPort,
    hostPortEnd,
  };
}
