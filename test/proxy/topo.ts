// Kernel-test topology for the proxy: a "host" namespace with a bridge and containers attached
// by veth (plain `ip`, the bridge driver is not used here), a neighbour on an underlay veth,
// and real TCP/UDP echo servers and clients (small Node programs run with nsenter).
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tryRun, run } from '../harness/exec.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { startNodeServer } from '../harness/node-server.js';
import type { BackendKind } from '../../proxy/backend.js';
import { Firewall } from '../../proxy/firewall.js';
import { NetnsTools } from '../../proxy/exec.js';
import { applySysctls } from '../../proxy/sysctl.js';

export const BRIDGE = 'tsbr0';
export const HOST_IP = '10.77.0.1';
export const HOST_IP6 = 'fd77::1';
export const NB_IP = '10.77.0.2';
export const containerIp = (i: number) => `172.30.0.${2 + i}`;
export const containerIp6 = (i: number) => `fd30::${2 + i}`;

export interface Topo {
  set: NetnsSet;
  host: Netns;
  nb: Netns;
  containers: Netns[];
  fw: Firewall;
  tools: NetnsTools;
  servers: ChildProcess[];
  /** Endpoint ids the firewall's endpointExists hook knows (ep0… for the containers). */
  endpoints: Set<string>;
  /** Start an echo server in ns answering "<name> <peer address>" on the given ports. */
  serve(ns: Netns, name: string, tcp: number[], udp: number[]): Promise<void>;
  cleanup(): Promise<void>;
}

const SERVER = `
const net = require('net'), dgram = require('dgram');
const { name, tcp, udp } = JSON.parse(process.argv[1]);
let pending = tcp.length + udp.length * 2;
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
const peer = (a) => a.replace(/^::ffff:/, '');
for (const p of tcp) net.createServer((s) => { s.on('error', () => {}); s.end(name + ' ' + peer(s.remoteAddress) + '\\n'); }).listen(p, '::', ready);
for (const p of udp) for (const type of ['udp4', 'udp6']) {
  const u = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
  u.on('error', (e) => { process.stderr.write(name + ' udp: ' + e.message + '\\n'); process.exit(1); });
  u.on('message', (m, r) => u.send(name + ' ' + peer(r.address) + '\\n', r.port, r.address));
  u.bind(p, type === 'udp4' ? '0.0.0.0' : '::', ready);
}
setTimeout(() => process.exit(0), 170000).unref();
process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
`;

const CLIENT = `
const net = require('net'), dgram = require('dgram');
const { proto, host, port, count, timeoutMs, sport } = JSON.parse(process.argv[1]);
function tcpOnce() { return new Promise((res) => {
  let buf = ''; const s = net.connect({ host, port });
  const t = setTimeout(() => { s.destroy(); res('ERR:TIMEOUT'); }, timeoutMs);
  s.on('data', (d) => (buf += d));
  s.on('end', () => { clearTimeout(t); res(buf.trim() || 'ERR:EMPTY'); });
  s.on('error', (e) => { clearTimeout(t); res('ERR:' + e.code); });
}); }
function udpOnce() { return new Promise((res) => {
  const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const t = setTimeout(() => { s.close(); res('ERR:TIMEOUT'); }, timeoutMs);
  s.on('message', (m) => { clearTimeout(t); s.close(); res(m.toString().trim()); });
  s.on('error', (e) => { clearTimeout(t); s.close(); res('ERR:' + e.code); });
  s.bind(sport || 0, () => s.send('x', port, host));
}); }
(async () => { const out = []; for (let i = 0; i < count; i++) out.push(await (proto === 'udp' ? udpOnce() : tcpOnce())); process.stdout.write(JSON.stringify(out)); })();
`;

/** Connect `count` times from ns (each a new connection or UDP socket); the replies or ERR:<code>. */
export async function probe(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, count = 1, timeoutMs = 1500, sport?: number): Promise<string[]> {
  const arg = JSON.stringify({ proto, host, port, count, timeoutMs, sport });
  const r = await tryRun('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', CLIENT, arg], { timeoutMs: count * timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** One reply (or ERR:…) for one connection. */
export async function reach(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = 1500): Promise<string> {
  return (await probe(ns, proto, host, port, 1, timeoutMs))[0]!;
}

/**
 * iptables-save, ip6tables-save and `nft -s list ruleset` (of ns, or of the root namespace: read
 * only) without timestamps or counters.
 */
export async function saveAll(ns?: Netns): Promise<string> {
  const save = (tool: string, args: string[] = []) => (ns ? ns.exec(tool, args) : run(tool, args));
  const strip = (s: string) => s.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  return `${strip(await save('iptables-save'))}\n${strip(await save('ip6tables-save'))}\n${await save(NFT_BIN, ['-s', 'list', 'ruleset'])}`;
}

/** What the kernel tests do to one backend's rules from outside (a firewalld-style flush, stale leftovers). */
export interface BackendOps {
  kind: BackendKind;
  /** Take out the published-port dispatch. */
  flushPublished(ns: Netns): Promise<void>;
  /** Take out the 127.0.0.0/8 martian drop (CVE-2020-8558). */
  flushRawDrop(ns: Netns): Promise<void>;
  /** A firewalld-style reload: iptables chains flushed, or our whole nft table deleted. */
  flushAll(ns: Netns): Promise<void>;
  /** Leave a stale object of ours behind and remove our forward hook. */
  breakStale(ns: Netns): Promise<void>;
  /** Whether the dump still shows the stale object. */
  hasStale(dump: string): boolean;
  /** A marker in the dump of a service's per-port chain. */
  svcMarker: string;
}

/**
 * nftables' nft by absolute path: under npx/ava, PATH starts with node_modules/.bin, whose `nft`
 * is @vercel/nft (a file tracer) — it exits 0 and does nothing.
 */
export const NFT_BIN = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p)) ?? '/usr/sbin/nft';

const nft = (ns: Netns, ...args: string[]) => ns.exec(NFT_BIN, args);

export const BACKEND_OPS: Record<BackendKind, BackendOps> = {
  iptables: {
    kind: 'iptables',
    flushPublished: async (ns) => void (await ns.exec('iptables', ['-t', 'nat', '-F', 'TSO-DNAT'])),
    flushRawDrop: async (ns) => void (await ns.exec('iptables', ['-t', 'raw', '-F', 'TSO-PREROUTING'])),
    flushAll: async (ns) => {
      await ns.exec('iptables', ['-t', 'nat', '-F', 'TSO-DNAT']);
      await ns.exec('iptables', ['-t', 'filter', '-F', 'TSO-FORWARD']);
    },
    breakStale: async (ns) => {
      await ns.exec('iptables', ['-t', 'nat', '-N', 'TSO-STALE']);
      await ns.exec('iptables', ['-t', 'nat', '-A', 'OUTPUT', '-j', 'TSO-STALE']);
      await ns.exec('iptables', ['-t', 'filter', '-D', 'FORWARD', '-j', 'TSO-FORWARD']);
    },
    hasStale: (dump) => dump.includes('TSO-STALE'),
    svcMarker: 'TSO-SVC-',
  },
  nft: {
    kind: 'nft',
    flushPublished: async (ns) => void (await nft(ns, 'flush', 'chain', 'inet', 'tsoverlay', 'published')),
    flushRawDrop: async (ns) => void (await nft(ns, 'flush', 'chain', 'inet', 'tsoverlay', 'raw-prerouting')),
    flushAll: async (ns) => void (await nft(ns, 'delete', 'table', 'inet', 'tsoverlay')),
    breakStale: async (ns) => {
      await nft(ns, 'add', 'chain', 'inet', 'tsoverlay', 'stale-chain');
      await nft(ns, 'add', 'rule', 'inet', 'tsoverlay', 'nat-output', 'jump', 'stale-chain');
      await nft(ns, 'add', 'element', 'inet', 'tsoverlay', 'pub4any', '{', 'tcp', '.', '9', ':', '172.30.0.99', '.', '9', '}');
      await nft(ns, 'delete', 'chain', 'inet', 'tsoverlay', 'filter-forward');
    },
    hasStale: (dump) => dump.includes('stale-chain') || dump.includes('172.30.0.99'),
    svcMarker: 'chain svc-',
  },
};

/**
 * Start an echo server in ns answering "<name> <peer address>" on the given ports; resolves once
 * it listens. The child is pushed to `servers` at once (the caller kills it by PID).
 */
export async function startEchoServer(ns: Netns, name: string, tcp: number[], udp: number[], servers: ChildProcess[]): Promise<ChildProcess> {
  const child = await startNodeServer(ns, `echo ${name}`, SERVER, { name, tcp, udp });
  servers.push(child);
  return child;
}

/** Build host + neighbour + n containers on one bridge, with the firewall initialised. */
export async function makeTopo(tag: string, n: number, net: { icc?: boolean } = {}, backend: BackendKind = 'iptables'): Promise<Topo> {
  const set = new NetnsSet(tag);
  const servers: ChildProcess[] = [];
  let fw: Firewall | undefined;
  const cleanup = async () => {
    // The nft backend's session process lives in the host namespace: stop it first.
    fw?.close();
    for (const s of servers.splice(0)) if (s.exitCode === null && s.pid) process.kill(s.pid, 'SIGKILL');
    await set.cleanup();
  };
  try {
    const host = await set.add('h');
    const nb = await set.add('n');
    await host.ip('link', 'add', BRIDGE, 'type', 'bridge');
    await host.ip('addr', 'add', '172.30.0.1/24', 'dev', BRIDGE);
    await host.ip('addr', 'add', 'fd30::1/64', 'dev', BRIDGE, 'nodad');
    await host.ip('link', 'set', BRIDGE, 'up');
    await set.link(host, 'uh', `${HOST_IP}/24`, nb, 'un', `${NB_IP}/24`);
    await host.ip('addr', 'add', `${HOST_IP6}/64`, 'dev', 'uh', 'nodad');
    await nb.ip('addr', 'add', 'fd77::2/64', 'dev', 'un', 'nodad');
    const containers: Netns[] = [];
    for (let i = 0; i < n; i++) {
      const c = await set.add(`c${i}`);
      await host.ip('link', 'add', `vc${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.name);
      await host.ip('link', 'set', `vc${i}`, 'master', BRIDGE, 'up');
      // As the bridge driver does (and Docker without its userland proxy): with br_netfilter a
      // frame DNAT'd back to the port it came from is bridged, so the port needs hairpin mode.
      await host.ip('link', 'set', `vc${i}`, 'type', 'bridge_slave', 'hairpin', 'on');
      await c.ip('addr', 'add', `${containerIp(i)}/24`, 'dev', 'eth0');
      await c.ip('addr', 'add', `${containerIp6(i)}/64`, 'dev', 'eth0', 'nodad');
      await c.ip('link', 'set', 'eth0', 'up');
      await c.ip('route', 'add', 'default', 'via', '172.30.0.1');
      await c.ip('-6', 'route', 'add', 'default', 'via', 'fd30::1');
      containers.push(c);
    }
    // As dockerd leaves it: forwarding is dropped unless someone accepts it.
    await host.exec('iptables', ['-P', 'FORWARD', 'DROP']);
    await host.exec('ip6tables', ['-P', 'FORWARD', 'DROP']);
    const tools = new NetnsTools(host.path);
    const endpoints = new Set(containers.map((_, i) => `ep${i}`));
    fw = new Firewall({ netnsPath: host.path, tools, backend, endpointExists: async (_net, ep) => endpoints.has(ep) });
    await fw.init();
    await fw.setNetwork({ id: 'net1', bridge: BRIDGE, subnets: ['172.30.0.0/24', 'fd30::/64'], icc: net.icc ?? true });
    await applySysctls(tools, fw.requiredSysctls());
    const serve = async (ns: Netns, name: string, tcp: number[], udp: number[]) => void (await startEchoServer(ns, name, tcp, udp, servers));
    return { set, host, nb, containers, fw, tools, servers, endpoints, serve, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
