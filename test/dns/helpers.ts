// Test helpers for dns/: building queries, sending them over UDP/TCP, running dig, and a
// RecordIndex fed directly with store-shaped JSON records.
import dgram from 'node:dgram';
import { connect } from 'node:net';
import { RecordIndex } from '../../dns/record-index.js';
import { tryRun } from '../harness/exec.js';

export interface QueryOptions {
  id?: number;
  cls?: number;
  rd?: boolean;
  /** Add an OPT record with this UDP size. */
  edns?: number;
  ednsVersion?: number;
  dnssecOk?: boolean;
}

/** A query message for (name, type). */
export function buildQuery(name: string, type: number, o: QueryOptions = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id ?? 0x1234, 0);
  header.writeUInt16BE(o.rd === false ? 0 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(type, 0);
  q.writeUInt16BE(o.cls ?? 1, 2);
  const parts = [header, wireName(name), q];
  if (o.edns !== undefined) {
    header.writeUInt16BE(1, 10);
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(o.edns, 3);
    opt[6] = o.ednsVersion ?? 0;
    opt.writeUInt16BE(o.dnssecOk ? 0x8000 : 0, 7);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** Wire form of a name keeping its case (keyToWire is for keys). */
export function wireName(name: string): Buffer {
  const out: number[] = [];
  for (const l of name.split('.').filter((x) => x)) out.push(l.length, ...Buffer.from(l, 'latin1'));
  out.push(0);
  return Buffer.from(out);
}

/** Send one datagram and wait for one reply (undefined on timeout). */
export function udpAsk(host: string, port: number, msg: Buffer, opts: { timeoutMs?: number; from?: string } = {}): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done(undefined), opts.timeoutMs ?? 2000);
    const done = (r: Buffer | undefined) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    sock.on('message', (m) => done(m));
    sock.on('error', () => done(undefined));
    const send = () => sock.send(msg, port, host);
    if (opts.from) sock.bind(0, opts.from, send);
    else send();
  });
}

/** Send messages over one TCP connection; resolves with the replies in arrival order. */
export function tcpAsk(host: string, port: number, msgs: Buffer[], opts: { timeoutMs?: number } = {}): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, opts.timeoutMs ?? 3000);
    sock.on('connect', () => {
      for (const m of msgs) {
        const f = Buffer.alloc(2);
        f.writeUInt16BE(m.length, 0);
        sock.write(Buffer.concat([f, m]));
      }
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** dig with +short-like parsing: returns status, flags and answer lines. */
export async function dig(args: string[], opts: { netns?: string } = {}): Promise<{ status: string; flags: string[]; answers: string[]; raw: string }> {
  const base = ['+time=4', '+tries=1', '+noall', '+comments', '+answer', ...args];
  const r = opts.netns ? await tryRun('nsenter', [`--net=${opts.netns}`, '--', 'dig', ...base]) : await tryRun('dig', base);
  const raw = r.stdout + r.stderr;
  const status = /status: (\w+)/.exec(raw)?.[1] ?? 'NONE';
  const flags = (/;; flags: ([a-z ]+);/.exec(raw)?.[1] ?? '').trim().split(/\s+/);
  const answers = raw
    .split('\n')
    .filter((l) => l && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).slice(3).join(' '));
  return { status, flags, answers, raw };
}

/** Store-shaped records applied straight to an index (no store). */
export function indexWith(records: {
  networks?: Record<string, unknown>[];
  endpoints?: Record<string, unknown>[];
  services?: Record<string, unknown>[];
}): RecordIndex {
  const idx = new RecordIndex();
  for (const n of records.networks ?? []) idx.apply('network', String(n.id), JSON.stringify(n));
  for (const e of records.endpoints ?? []) idx.apply('endpoint', `${e.networkId}\0${e.id}`, JSON.stringify(e));
  for (const s of records.services ?? []) idx.apply('service', String(s.name), JSON.stringify(s));
  return idx;
}

/** Poll until fn returns a truthy value or the time is up; returns the elapsed ms and value. */
export async function until<X>(fn: () => Promise<X | undefined | false>, timeoutMs: number, stepMs = 10): Promise<{ value?: X; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const v = await fn();
    if (v) return { value: v, ms: performance.now() - t0 };
    if (performance.now() - t0 > timeoutMs) return { ms: performance.now() - t0 };
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
