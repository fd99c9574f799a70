// The batched native UDP path (dns/native/): a burst of 10,000 queries from IPv4 and IPv6 clients
// is answered completely and correctly, the source address decides the scope inside a batch,
// malformed and oversized datagrams get the same replies as over dgram, and stopping while
// traffic flows is clean. Builds the addon into a temp dir when dist/ has none.
import test, { type ExecutionContext } from 'ava';
import dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RCODE, T } from '../../dns/constants.js';
import { decodeMessage } from '../../dns/message.js';
import { ADDON_ENV, loadUdpBatch } from '../../dns/native-udp.js';
import type { RecordIndex } from '../../dns/record-index.js';
import { EndpointScopes, OpenScopes, type ScopeResolver } from '../../dns/scope.js';
import { DnsServer, type ListenAddress } from '../../dns/server.js';
import { buildQuery, indexWith, udpAsk } from './helpers.js';

const NAMES = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ip = (i: number) => `10.7.${i >> 8}.${(i & 0xff) + 1}`;

function records(): RecordIndex {
  const endpoints = Array.from({ length: NAMES }, (_, i) => ({ id: `e${i}`, networkId: 'n1', name: `n${i}`, addresses: [`${ip(i)}/16`] }));
  endpoints.push({ id: 'lo2', networkId: 'n1', name: 'inner', addresses: ['127.0.0.2/8'] });
  return indexWith({ networks: [{ id: 'n1', name: 'front', subnets: ['10.7.0.0/16'] }], endpoints });
}

/** True when the addon loads, building it into a temp dir first if needed (false: no compiler here). */
function ensureAddon(t: ExecutionContext): boolean {
  if (loadUdpBatch().addon) return true;
  const dir = mkdtempSync(join(tmpdir(), 'tsot-udpbatch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'udp-batch.node');
  const r = spawnSync(process.execPath, ['dns/native/build.mjs', out], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  process.env[ADDON_ENV] = out;
  const ok = loadUdpBatch().addon !== undefined;
  if (!ok) t.log(`no addon built (${r.stderr.trim()}): native path not available on this machine`);
  return ok;
}

async function serve(t: ExecutionContext, index: RecordIndex, scopes: ScopeResolver, listen: ListenAddress[], udp: 'native' | 'dgram'): Promise<DnsServer> {
  const server = new DnsServer({ index, scopes, listen, upstreams: [], udp });
  await server.start();
  t.teardown(() => server.stop());
  t.deepEqual(server.udpKinds(), listen.map(() => udp));
  return server;
}

/** Send `count` queries from one socket with up to `window` in flight; resolves with the IDs answered wrong or not at all. */
function blast(host: string, port: number, from: string, count: number, first: number, window = 32): Promise<string[]> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const pending = new Map<number, number>();
    const bad: string[] = [];
    let next = 0;
    const timer = setTimeout(() => finish([...pending.keys()].map((id) => `id ${id}: no reply`)), 20_000);
    const finish = (more: string[]) => {
      clearTimeout(timer);
      sock.close();
      resolve([...bad, ...more]);
    };
    const send = () => {
      while (pending.size < window && next < count) {
        const id = (first + next) & 0xffff;
        const n = (first + next) % NAMES;
        pending.set(id, n);
        sock.send(buildQuery(`N${n}`, T.A, { id }), port, host);
        next++;
      }
      if (pending.size === 0) finish([]);
    };
    sock.on('message', (m) => {
      const id = m.readUInt16BE(0);
      const n = pending.get(id);
      if (n === undefined) return void bad.push(`id ${id}: unexpected`);
      pending.delete(id);
      const a = decodeMessage(m)?.answers.map((x) => String(x.data));
      if (a?.length !== 1 || a[0] !== ip(n)) bad.push(`id ${id}: ${JSON.stringify(a)} for n${n}`);
      send();
    });
    sock.bind(0, from, send);
  });
}

test('a burst of 10,000 queries from 4 IPv4 and 2 IPv6 clients is answered completely, IDs and answers matching', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const server = await serve(t, records(), new OpenScopes(records()), [{ host: '127.0.0.1', port: 0 }, { host: '::1', port: 0 }], 'native');
  const [v4, v6] = server.addresses();
  const per = 10_000 / 5;
  const clients = [0, 1, 2, 3].map((k) => blast('127.0.0.1', v4!.port, '127.0.0.1', k < 2 ? per : per / 2, k * per));
  clients.push(...[0, 1].map((k) => blast('::1', v6!.port, '::1', per, 40_000 + k * per)));
  const problems = (await Promise.all(clients)).flat();
  t.deepEqual(problems.slice(0, 5), []);
});

test('inside one batch each datagram gets the scope of its own source address', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const index = records();
  const server = await serve(t, index, new EndpointScopes(index), [{ host: '127.0.0.1', port: 0 }], 'native');
  const { port } = server.addresses()[0]!;
  const ask = (from: string, id: number) => udpAsk('127.0.0.1', port, buildQuery('inner', T.A, { id }), { from });
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => ask(i % 2 ? '127.0.0.3' : '127.0.0.2', i)));
  replies.forEach((r, i) => {
    const m = decodeMessage(r!)!;
    t.is(m.id, i);
    if (i % 2) t.is(m.rcode, RCODE.REFUSED, 'not an endpoint: refused (not an open resolver)');
    else t.deepEqual(m.answers.map((a) => String(a.data)), ['127.0.0.2']);
  });
});

test('malformed, oversized and odd datagrams get the same replies (or none) as over dgram; the server keeps answering', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const index = records();
  const nat = (await serve(t, index, new OpenScopes(index), [{ host: '127.0.0.1', port: 0 }], 'native')).addresses()[0]!;
  const dgr = (await serve(t, index, new OpenScopes(index), [{ host: '127.0.0.1', port: 0 }], 'dgram')).addresses()[0]!;
  const q = buildQuery('n5', T.A, { id: 7 });
  const loop = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  const many = Buffer.from(q);
  many.writeUInt16BE(3, 4);
  const big = Buffer.concat([buildQuery('n6', T.A, { id: 8, edns: 1232 }), Buffer.alloc(60_000, 0x41)]);
  const cases = [Buffer.alloc(0), Buffer.from([1, 2, 3]), q.subarray(0, 12), q.subarray(0, q.length - 2), loop, many, big, Buffer.alloc(1500, 0xff), buildQuery('n7', 65000, { id: 9 }), buildQuery('n8', T.A, { id: 10, cls: 3 })];
  const ask = (to: ListenAddress, c: Buffer) => udpAsk(to.host, to.port, c, { timeoutMs: 1500 });
  const replies = await Promise.all(cases.map((c) => Promise.all([ask(nat, c), ask(dgr, c)])));
  replies.forEach(([a, b], i) => t.deepEqual(a?.toString('hex'), b?.toString('hex'), `case ${i}`));
  const ok = decodeMessage((await udpAsk(nat.host, nat.port, q))!)!;
  t.deepEqual(ok.answers.map((x) => String(x.data)), [ip(5)]);
});

// Serial: a concurrently started server could take over the stopped one's port.
test.serial('stopping while queries flow neither crashes nor answers afterwards; start and stop repeatedly under load', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const index = records();
  for (let round = 0; round < 5; round++) {
    const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [], udp: 'native' });
    await server.start();
    const { host, port } = server.addresses()[0]!;
    const sock = dgram.createSocket('udp4');
    let answered = 0;
    sock.on('message', () => answered++);
    const q = buildQuery('n1', T.A);
    const flood = setInterval(() => {
      for (let i = 0; i < 50; i++) sock.send(q, port, host);
    }, 1);
    for (let waited = 0; answered < 100 && waited < 3000; waited += 10) await sleep(10);
    await server.stop();
    // Replies sent before the stop may still sit in the client's socket: wait until none arrive.
    let before = -1;
    while (before !== answered) {
      before = answered;
      await sleep(30);
    }
    await sleep(60);
    clearInterval(flood);
    sock.close();
    t.true(before > 0, `round ${round}: answers while running`);
    t.is(answered, before, `round ${round}: nothing after stop`);
  }
});

test('by default (auto) a server uses the native path when the addon loads; TSOVERLAY_DNS_UDP=dgram or udp: "dgram" keep dgram', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const index = records();
  const auto = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [] });
  await auto.start();
  t.teardown(() => auto.stop());
  t.deepEqual(auto.udpKinds(), [process.env.TSOVERLAY_DNS_UDP === 'dgram' ? 'dgram' : 'native']);
  const forced = await serve(t, index, new OpenScopes(index), [{ host: '127.0.0.1', port: 0 }], 'dgram');
  const { host, port } = forced.addresses()[0]!;
  t.deepEqual(decodeMessage((await udpAsk(host, port, buildQuery('n3', T.A)))!)!.answers.map((x) => String(x.data)), [ip(3)]);
});

test('the addon ignores out-lengths and peer lengths from JS that are out of bounds, and checks its arguments', async (t) => {
  if (!ensureAddon(t)) return t.pass();
  const addon = loadUdpBatch().addon!;
  const server = dgram.createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'state symbol')!;
  const handle = (server as unknown as Record<symbol, { handle: { fd: number; recvStop(): void } }>)[key].handle;
  handle.recvStop();
  let batches = 0;
  const opened = addon.open(handle.fd, (n) => {
    batches++;
    const w = new Uint32Array(opened.ctrl);
    const out = Buffer.from(opened.out);
    const [inAt, outAt] = [(opened.batch * addon.peer) / 4, (opened.batch * addon.peer) / 4 + 2 * opened.batch];
    for (let i = 0; i < n; i++) {
      const tag = Buffer.from(opened.in, i * addon.slot, w[inAt + i]!).toString();
      out.write(`re:${tag}`, i * addon.slot);
      w[outAt + i] = 3 + tag.length;
      if (tag === 'huge') w[outAt + i] = addon.slot + 1;
      if (tag === 'max') w[outAt + i] = 0xffffffff;
      if (tag === 'badpeer') w[(i * addon.peer) / 4 + 7] = 4096; // its sockaddr length
    }
  });
  t.teardown(() => addon.close(opened.handle));
  const { port } = server.address();
  const client = dgram.createSocket('udp4');
  const got: string[] = [];
  client.on('message', (m) => got.push(m.toString()));
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  t.teardown(() => client.close());
  for (const m of ['a', 'huge', 'max', 'badpeer', 'b']) client.send(m, port, '127.0.0.1');
  for (let waited = 0; got.length < 2 && waited < 3000; waited += 10) await sleep(10);
  await sleep(50);
  t.deepEqual(got.sort(), ['re:a', 're:b']);
  t.true(batches >= 1);
  const s = addon.stats(opened.handle);
  t.is(s[0], 5);
  t.is(s[1], 2);
  t.throws(() => addon.sendTo(opened.handle, Buffer.from('x'), Buffer.alloc(8)), { message: /sendTo/ });
  t.throws(() => addon.sendTo({}, Buffer.from('x'), Buffer.alloc(32)), { message: /sendTo/ });
  t.throws(() => addon.open(-1, () => {}), { message: /open/ });
  const peer = Buffer.alloc(32);
  peer.writeUInt32LE(4096, 28);
  t.not(addon.sendTo(opened.handle, Buffer.from('x'), peer), 0, 'a bad peer length is an error, not a read past the buffer');
});
