// Store and multi-host checks of `tsoverlay doctor`: the store answers a put/get/delete round trip
// quickly; overlay networks' MTU fits the underlay (MTU − 50 for VXLAN); every registered host has
// an advertise address that answers ping from here. Limit: ping proves the path, not that UDP 4789
// (VXLAN) passes the firewalls between hosts.
import { existsSync } from 'node:fs';
import { Kernel } from '../../netlink/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { parseStoreUrl } from '../../store/url.js';
import { extraTool, fail, firstLine, inScope, pass, toolsIn, type Check, type Scope } from './doctor-check.js';
import { readTopology, type TopologyHost } from './topology.js';

/** VXLAN over IPv4 adds 50 bytes (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;
/** A round trip slower than this is reported (ms). */
export const SLOW_STORE_MS = 500;
/** At most this many hosts are pinged. */
const MAX_PEERS = 64;

const doctorKey = keys.doctorProbe;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function storeFix(url: string): string {
  try {
    const target = parseStoreUrl(url);
    if (target.kind === 'sqlite') {
      return existsSync(target.file)
        ? `ls -l ${target.file} (it must be readable and writable by this user; run as root)`
        : `tsoverlay daemon --store ${url} (the daemon creates the store when it starts)`;
    }
    return `etcdctl --endpoints=${target.config.endpoints.join(',')} endpoint health`;
  } catch {
    return 'tsoverlay doctor --store sqlite:///var/lib/tsoverlay/store.db (a valid store URL)';
  }
}

/** Open the store (a missing SQLite file is reported, not created) and time a round trip. */
export async function storeCheck(url: string, timeoutMs: number): Promise<{ check: Check; store?: Store }> {
  let store: Store | undefined;
  try {
    const target = parseStoreUrl(url);
    if (target.kind === 'sqlite' && !existsSync(target.file)) {
      return { check: fail('store', `no store at ${target.file} (the daemon creates it when it starts)`, storeFix(url)) };
    }
    store = await withTimeout(openStore(url), timeoutMs, 'opening the store');
    const key = doctorKey(`${process.pid}-${Date.now()}`);
    const value = JSON.stringify({ pid: process.pid, at: new Date().toISOString() });
    const start = performance.now();
    await withTimeout(store.put(key, value), timeoutMs, 'put');
    const got = await withTimeout(store.get(key), timeoutMs, 'get');
    await withTimeout(store.delete(key), timeoutMs, 'delete');
    const ms = performance.now() - start;
    if (got?.value !== value) return { check: fail('store', `${store.description}: a value put was not read back`, storeFix(url)), store };
    const detail = `${store.description}: put/get/delete in ${ms.toFixed(1)} ms`;
    if (ms > SLOW_STORE_MS) return { check: fail('store', `${detail} (slower than ${SLOW_STORE_MS} ms)`, storeFix(url)), store };
    return { check: pass('store', detail), store };
  } catch (err) {
    await store?.close().catch(() => {});
    return { check: fail('store', `${firstLine((err as Error).message)}`, storeFix(url)) };
  }
}

/** The underlay: the interface of the default route, else the one holding this host's advertise address. */
async function underlay(kernel: Kernel, scope: Scope, advertise: string | null): Promise<{ dev: string; mtu: number } | undefined> {
  const ns = kernel.ns(scope.netnsPath ?? null);
  const [routes, addrs, links] = await Promise.all([ns.routes({ family: 4 }), ns.addresses(), ns.links()]);
  const dev = (advertise ? addrs.find((a) => a.address === advertise)?.dev : undefined) ?? routes.find((r) => r.dst === 'default' && r.dev)?.dev;
  const link = links.find((l) => l.name === dev);
  return link?.mtu === undefined || dev === undefined ? undefined : { dev, mtu: link.mtu };
}

/** Overlay networks whose MTU exceeds the underlay's MTU − 50 drop full-size packets. */
export async function mtuCheck(store: Store, kernel: Kernel, scope: Scope, hostId: string): Promise<Check> {
  const overlays = (await new RecordStore(store).listNetworks()).filter((n) => n.driver === 'overlay');
  if (overlays.length === 0) return pass('overlay-mtu', 'no overlay networks');
  const self = (await readTopology(store)).hosts.find((h) => h.id === hostId);
  const u = await underlay(kernel, scope, self?.advertise ?? null);
  if (!u) return fail('overlay-mtu', 'cannot find the underlay interface (no default route, no advertise address here)', `tsoverlay daemon --advertise <this host's underlay IP>`);
  const limit = u.mtu - VXLAN_OVERHEAD;
  const bad = overlays.filter((n) => (n.mtu ?? 0) > limit);
  if (bad.length === 0) return pass('overlay-mtu', `${overlays.length} overlay network(s) fit ${u.dev} (MTU ${u.mtu} − ${VXLAN_OVERHEAD} = ${limit})`);
  const worst = Math.max(...bad.map((n) => n.mtu ?? 0));
  const names = bad.map((n) => `${n.name ?? n.id} (MTU ${n.mtu})`).join(', ');
  return fail(
    'overlay-mtu',
    `${names} exceed ${u.dev}'s MTU ${u.mtu} − ${VXLAN_OVERHEAD} = ${limit}: full-size packets are dropped`,
    `${inScope(scope, `ip link set dev ${u.dev} mtu ${worst + VXLAN_OVERHEAD}`)}; or re-create the network with -o mtu=${limit}`,
  );
}

async function pingable(scope: Scope, address: string): Promise<boolean> {
  const r = await toolsIn(scope).tryRun(extraTool('ping'), ['-c', '1', '-W', '1', '-n', '-q', address]).catch(() => undefined);
  return r?.code === 0;
}

/** Every live host must advertise an address, and that address must answer from here. */
export async function peersCheck(store: Store, scope: Scope): Promise<Check> {
  const hosts = (await readTopology(store)).hosts.filter((h) => h.alive).slice(0, MAX_PEERS);
  if (hosts.length === 0) return pass('peers', 'no live hosts registered');
  const silent: TopologyHost[] = hosts.filter((h) => h.advertise === null);
  const probed = await Promise.all(hosts.filter((h) => h.advertise !== null).map(async (h) => ({ h, ok: await pingable(scope, h.advertise!) })));
  const down = probed.filter((p) => !p.ok).map((p) => p.h);
  const summary = probed.map((p) => `${p.h.id} ${p.h.advertise} ${p.ok ? 'answers' : 'does not answer'}`);
  for (const h of silent) summary.push(`${h.id} has no advertise address`);
  if (silent.length === 0 && down.length === 0) return pass('peers', `${summary.join('; ')} (ICMP only: UDP 4789 not tested)`);
  const fixes = [
    ...silent.map((h) => `on ${h.id}: tsoverlay daemon --advertise <its underlay IP>`),
    ...down.map((h) => `${inScope(scope, `ping -c 1 ${h.advertise}`)} (check the route and firewalls to ${h.id}; VXLAN also needs UDP 4789 open)`),
  ];
  return fail('peers', summary.join('; '), fixes.join('; '));
}
