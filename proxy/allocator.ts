// Host-port reservations: one host port per (protocol, host address) on a host, a wildcard
// (0.0.0.0 / ::) conflicting with every address of its family. Reservations live in the store
// (keys.hostPort) through compare-and-swap, so the daemon and standalone CNI plugins agree.
// Limits: conflicts are per address family; listeners are read once per reserve() call.
import { readFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { keys, type Store } from '../store/index.js';
import { ProxyError } from './errors.js';
import { NetnsTools } from './exec.js';
import { familyOf, type Proto } from './validate.js';

/** One host address and port held for an owner (an endpoint id). */
export interface Reservation {
  proto: Proto;
  /** 0.0.0.0, :: or a specific canonical address. */
  hostIp: string;
  hostPort: number;
}

/** A port wanted on one or more host addresses (the same port on each, as Docker does for 0.0.0.0 and ::). */
export interface PortWant {
  proto: Proto;
  hostIps: string[];
  /** 0 = any port of the allocator's range. */
  hostPort: number;
  hostPortEnd: number;
}

export interface Listener {
  proto: 'tcp' | 'udp';
  /** '*' for a wildcard listener. */
  ip: string;
  port: number;
}

export interface AllocatorOptions {
  hostId: string;
  /** When absent, reservations are kept in this process only. */
  store?: Store;
  /** Range for random host ports (default 49153–65535). */
  range?: [number, number];
  /** Sockets listening in the target namespace (default: none). */
  listeners?: () => Promise<Listener[]>;
  /** Reuse a listener read for this long (default 1000 ms), so a burst of publishes reads once. */
  listenerTtlMs?: number;
  random?: () => number;
}

const isWild = (ip: string) => ip === '0.0.0.0' || ip === '::' || ip === '*';

/** True when two addresses of one protocol and port would take the same packets. */
export function overlaps(a: string, b: string): boolean {
  if (a === '*' || b === '*') return true;
  if (familyOf(a) !== familyOf(b)) return false;
  return a === b || isWild(a) || isWild(b);
}

/** /proc/net/{tcp,udp}[6] hex address "0100007F:1F90" -> ip ('*' for a wildcard) and port. */
function procAddress(hex: string, v6: boolean): { ip: string; port: number } {
  const [a, p] = hex.split(':') as [string, string];
  const words = v6 ? a.match(/.{8}/g)! : [a];
  // Each 32-bit word is in host (little-endian) order.
  const bytes = words.flatMap((w) => w.match(/../g)!.reverse().map((b) => parseInt(b, 16)));
  const wild = bytes.every((b) => b === 0);
  const ip = wild ? '*' : v6 ? ipaddr.fromByteArray(bytes).toString() : bytes.join('.');
  return { ip, port: parseInt(p, 16) };
}

/**
 * The listening TCP and bound UDP sockets of the tools' namespace: /proc/net directly for the
 * caller's own namespace (no spawn), `ss -Hltun` inside another one.
 */
export async function readListeners(tools: NetnsTools): Promise<Listener[]> {
  const result: Listener[] = [];
  if (tools.netnsPath === undefined) {
    for (const [file, proto, state] of [['tcp', 'tcp', '0A'], ['tcp6', 'tcp', '0A'], ['udp', 'udp', '07'], ['udp6', 'udp', '07']] as const) {
      const text = await readFile(`/proc/net/${file}`, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 3 && cols[3] === state) result.push({ proto, ...procAddress(cols[1]!, file.endsWith('6')) });
      }
    }
    return result;
  }
  const out = await tools.run('ss', ['-Hltun']);
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    const proto = cols[0] === 'tcp' ? 'tcp' : cols[0] === 'udp' ? 'udp' : undefined;
    const m = /^\[?(.*?)(?:%[^\]]*)?\]?:(\d+)$/.exec(cols[4]!);
    if (!proto || !m) continue;
    const ip = m[1] === '*' || m[1] === '0.0.0.0' || m[1] === '::' ? '*' : m[1]!;
    result.push({ proto, ip, port: Number(m[2]) });
  }
  return result;
}

/** Entries not held by owner on one of ips. */
function others<T extends { ip: string; owner: string }>(held: readonly T[], owner: string, ips: readonly string[]): T[] {
  return held.filter((h) => !(h.owner === owner && ips.includes(h.ip)));
}

interface IndexValue {
  /** Addresses reserved at this protocol/family/port, with their owners. */
  held: { ip: string; owner: string }[];
}

/** Allocates host ports; all-or-nothing per reserve() call. */
export class HostPortAllocator {
  private readonly range: [number, number];
  private readonly random: () => number;
  private listenerCache?: { at: number; list: Promise<Listener[]> };
  /** Reservations made by this process: "proto/port" -> [{ip, owner}]. */
  private readonly local = new Map<string, { ip: string; owner: string }[]>();

  constructor(private readonly opts: AllocatorOptions) {
    this.range = opts.range ?? [49153, 65535];
    this.random = opts.random ?? Math.random;
    const [lo, hi] = this.range;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || hi < lo) {
      throw new ProxyError('invalid-range', `host port range ${lo}-${hi} is not within 1..65535`);
    }
  }

  /** Reserve every want for owner, or nothing (throws port-taken / port-exhausted). */
  async reserve(owner: string, wants: readonly PortWant[]): Promise<Reservation[]> {
    const listeners = await this.listeners();
    const done: Reservation[] = [];
    try {
      for (const w of wants) done.push(...(await this.reserveOne(owner, w, listeners, done)));
      return done;
    } catch (err) {
      await this.release(owner, done);
      throw err;
    }
  }

  private listeners(): Promise<Listener[]> {
    const read = this.opts.listeners;
    if (!read) return Promise.resolve([]);
    const now = Date.now();
    if (!this.listenerCache || now - this.listenerCache.at > (this.opts.listenerTtlMs ?? 1000)) {
      this.listenerCache = { at: now, list: read() };
      this.listenerCache.list.catch(() => (this.listenerCache = undefined));
    }
    return this.listenerCache.list;
  }

  private async reserveOne(owner: string, w: PortWant, listeners: Listener[], earlier: Reservation[]): Promise<Reservation[]> {
    const fixed = w.hostPort !== 0 && w.hostPort === w.hostPortEnd;
    const [lo, hi] = w.hostPort === 0 ? this.range : [w.hostPort, w.hostPortEnd];
    const span = hi - lo + 1;
    const start = fixed ? 0 : Math.floor(this.random() * span);
    for (let i = 0; i < span; i++) {
      const port = lo + ((start + i) % span);
      const busy = listeners.find((l) => l.proto === w.proto && l.port === port && w.hostIps.some((ip) => overlaps(l.ip, ip)));
      if (busy && fixed) {
        throw new ProxyError('port-taken', `host port ${w.hostIps.join(',')}:${port}/${w.proto} is in use by a listening socket on ${busy.ip}`);
      }
      const twice = earlier.some((r) => r.proto === w.proto && r.hostPort === port && w.hostIps.some((ip) => overlaps(r.hostIp, ip)));
      if (busy || twice || this.localConflict(owner, w, port)) {
        if (fixed) throw this.taken(w, port);
        continue;
      }
      if (await this.claim(owner, w, port)) return w.hostIps.map((hostIp) => ({ proto: w.proto, hostIp, hostPort: port }));
      if (fixed) throw this.taken(w, port);
    }
    throw new ProxyError('port-exhausted', `no free ${w.proto} host port in ${lo}-${hi} for ${w.hostIps.join(',')}`, { retryable: true });
  }

  private taken(w: PortWant, port: number): ProxyError {
    return new ProxyError('port-taken', `host port ${w.hostIps.join(',')}:${port}/${w.proto} is already taken`);
  }

  private localConflict(owner: string, w: PortWant, port: number): boolean {
    const held = others(this.local.get(`${w.proto}/${port}`) ?? [], owner, w.hostIps);
    return held.some((h) => w.hostIps.some((ip) => overlaps(h.ip, ip)));
  }

  /** Take `port` on every address of w, atomically against the store's per-port index. */
  private async claim(owner: string, w: PortWant, port: number): Promise<boolean> {
    const store = this.opts.store;
    if (store) {
      for (const fam of new Set(w.hostIps.map(familyOf))) {
        const ips = w.hostIps.filter((ip) => familyOf(ip) === fam);
        if (!(await this.claimInStore(store, owner, w.proto, ips, port, fam))) {
          await this.releaseInStore(store, owner, w.proto, w.hostIps.filter((ip) => familyOf(ip) !== fam), port);
          return false;
        }
      }
    }
    const k = `${w.proto}/${port}`;
    this.local.set(k, [...others(this.local.get(k) ?? [], owner, w.hostIps), ...w.hostIps.map((ip) => ({ ip, owner }))]);
    return true;
  }

  private indexKey(proto: Proto, family: 4 | 6, port: number): string {
    // Not an address segment: one index per protocol/family/port makes the wildcard check atomic.
    return keys.hostPort(this.opts.hostId, proto, `index-v${family}`, port);
  }

  private async claimInStore(store: Store, owner: string, proto: Proto, ips: string[], port: number, fam: 4 | 6): Promise<boolean> {
    const ik = this.indexKey(proto, fam, port);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.storeCall(() => store.get(ik));
      const index: IndexValue = cur ? (JSON.parse(cur.value) as IndexValue) : { held: [] };
      // The same owner asking again (a restart re-publishing) keeps what it holds.
      const rest = others(index.held, owner, ips);
      if (rest.some((h) => ips.some((ip) => overlaps(h.ip, ip)))) return false;
      if (rest.length + ips.length === index.held.length) return true;
      const next: IndexValue = { held: [...rest, ...ips.map((ip) => ({ ip, owner }))] };
      const value = JSON.stringify({ owner, proto, port });
      const r = await this.storeCall(() =>
        store.txn(
          [{ key: ik, target: 'modRevision', op: '==', value: cur?.modRevision ?? 0 }],
          [{ type: 'put', key: ik, value: JSON.stringify(next) }, ...ips.map((ip) => ({ type: 'put' as const, key: keys.hostPort(this.opts.hostId, proto, ip, port), value }))],
        ),
      );
      if (r.succeeded) return true;
    }
    return false;
  }

  private async releaseInStore(store: Store, owner: string, proto: Proto, ips: string[], port: number): Promise<void> {
    for (const fam of new Set(ips.map(familyOf))) {
      const mine = ips.filter((ip) => familyOf(ip) === fam);
      const ik = this.indexKey(proto, fam, port);
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await this.storeCall(() => store.get(ik));
        const index: IndexValue = cur ? (JSON.parse(cur.value) as IndexValue) : { held: [] };
        const held = index.held.filter((h) => !(h.owner === owner && mine.includes(h.ip)));
        const ops = mine.map((ip) => ({ type: 'delete' as const, key: keys.hostPort(this.opts.hostId, proto, ip, port) }));
        const indexOp = held.length ? { type: 'put' as const, key: ik, value: JSON.stringify({ held }) } : { type: 'delete' as const, key: ik };
        const r = await this.storeCall(() => store.txn([{ key: ik, target: 'modRevision', op: '==', value: cur?.modRevision ?? 0 }], [indexOp, ...ops]));
        if (r.succeeded) break;
      }
    }
  }

  /** Give reservations back (idempotent). */
  async release(owner: string, reservations: readonly Reservation[]): Promise<void> {
    for (const r of reservations) {
      const k = `${r.proto}/${r.hostPort}`;
      const left = (this.local.get(k) ?? []).filter((h) => !(h.owner === owner && h.ip === r.hostIp));
      if (left.length) this.local.set(k, left);
      else this.local.delete(k);
      if (this.opts.store) await this.releaseInStore(this.opts.store, owner, r.proto, [r.hostIp], r.hostPort);
    }
  }

  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const retryable = (err as { retryable?: unknown }).retryable === true;
      throw new ProxyError('store-failed', `host-port reservation: ${(err as Error).message}`, { retryable, cause: err });
    }
  }
}
