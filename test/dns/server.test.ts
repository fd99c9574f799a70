// The server on loopback with a real SQLite store: names appear and vanish as records are
// written (dig, Node's resolver), TCP with several messages, truncation and TCP retry, slow
// and idle TCP clients (CVE-2024-8418), and forwarding with failover and spoof rejection.
import test from 'ava';
import { promises as dnsp } from 'node:dns';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RCODE, T } from '../../dns/constants.js';
import { decodeMessage } from '../../dns/message.js';
import { RecordIndex } from '../../dns/record-index.js';
import { OpenScopes } from '../../dns/scope.js';
import { DnsServer, type DnsServerOptions } from '../../dns/server.js';
import { StoreSync } from '../../dns/store-sync.js';
import { keys } from '../../store/keys.js';
import { SqliteStore } from '../../store/sqlite.js';
import { buildQuery, dig, tcpAsk, udpAsk, until } from './helpers.js';
import { startStubUpstream, type StubMode, type StubUpstream } from './stub-upstream.js';

interface Ctx {
  writer: SqliteStore;
  server: DnsServer;
  host: string;
  port: number;
}

type Teardown = { teardown: (f: () => Promise<void> | void) => void };

async function start(t: Teardown, opts: Partial<DnsServerOptions> = {}): Promise<Ctx> {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-dns-'));
  const file = join(dir, 'store.db');
  // The server reads through its own connection; tests write through another, as a CNI process would.
  const reader = SqliteStore.open(file);
  const writer = SqliteStore.open(file);
  const index = new RecordIndex();
  const sync = new StoreSync(reader, index, { skydns: false });
  await writer.put(keys.network('n1'), JSON.stringify({ id: 'n1', name: 'front', subnets: ['10.7.0.0/24'] }));
  await sync.start();
  const server = new DnsServer({ index, scopes: new OpenScopes(index), listen: [{ host: '127.0.0.1', port: 0 }], upstreams: [], ...opts });
  await server.start();
  t.teardown(async () => {
    await server.stop();
    await sync.stop();
    await reader.close();
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { host, port } = server.addresses()[0]!;
  return { writer, server, host, port };
}

const endpoint = (id: string, name: string, addresses: string[], extra: object = {}) =>
  JSON.stringify({ id, networkId: 'n1', name, addresses, ...extra });

async function aRecords(c: Ctx, name: string): Promise<string[]> {
  const r = await udpAsk(c.host, c.port, buildQuery(name, T.A), { timeoutMs: 500 });
  const m = r && decodeMessage(r);
  return m ? m.answers.map((a) => String(a.data)) : [];
}

// Serial: AVA runs serial tests first, alone in this process, so the timing is the server's.
test.serial('a name appears within 200 ms of its endpoint record and vanishes when it goes', async (t) => {
  const c = await start(t);
  t.is((await dig(['@' + c.host, '-p', String(c.port), 'web.front.tsoverlay'])).status, 'NXDOMAIN');
  const times: number[] = [];
  for (const [i, [name, ip]] of [['early', '10.7.0.10'], ['again', '10.7.0.11'], ['web', '10.7.0.2']].entries()) {
    const extra = name === 'web' ? { aliases: ['www'], hostname: 'h-web' } : {};
    await c.writer.put(keys.endpoint('n1', `e${i}`), endpoint(`e${i}`, name!, [`${ip}/24`], extra));
    const seen = await until(async () => (await aRecords(c, `${name}.front.tsoverlay`)).includes(ip!), 2000, 2);
    t.truthy(seen.value, `${name} appeared`);
    times.push(seen.ms);
  }
  t.log(`appeared after ${times.map((ms) => ms.toFixed(1)).join(', ')} ms`);
  t.true(Math.max(...times) < 200, `appeared after ${times.join(', ')} ms`);
  const d = await dig(['@' + c.host, '-p', String(c.port), 'www', 'A']);
  t.deepEqual(d.answers, ['A 10.7.0.2']);
  const resolver = new dnsp.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`${c.host}:${c.port}`]);
  t.deepEqual(await resolver.resolve4('h-web'), ['10.7.0.2']);
  t.deepEqual(await resolver.reverse('10.7.0.2'), ['web.front.tsoverlay']);
  await c.writer.delete(keys.endpoint('n1', 'e2'));
  const gone = await until(async () => (await aRecords(c, 'web.front.tsoverlay')).length === 0, 2000, 2);
  t.truthy(gone.value);
  t.log(`vanished after ${gone.ms.toFixed(1)} ms`);
  t.true(gone.ms < 200, `vanished after ${gone.ms.toFixed(1)} ms`);
  await t.throwsAsync(resolver.resolve4('web.front.tsoverlay'), { code: 'ENOTFOUND' });
});

test('TCP: several messages on one connection, answered each with its ID', async (t) => {
  const c = await start(t);
  await c.writer.put(keys.endpoint('n1', 'e1'), endpoint('e1', 'web', ['10.7.0.2/24', 'fd07::2/64']));
  await until(async () => (await aRecords(c, 'web')).length > 0, 2000);
  const msgs = [1, 2, 3, 4, 5].map((i) => buildQuery(i % 2 ? 'web' : 'web.front.tsoverlay', i % 2 ? T.A : T.AAAA, { id: 100 + i }));
  const replies = await tcpAsk(c.host, c.port, msgs);
  t.deepEqual(replies.map((r) => decodeMessage(r)!.id).sort(), [101, 102, 103, 104, 105]);
  for (const r of replies) t.is(decodeMessage(r)!.answers.length, 1);
  const d = await dig(['@' + c.host, '-p', String(c.port), '+tcp', '+keepopen', 'web', 'A', 'web.front.tsoverlay', 'AAAA']);
  t.deepEqual(d.answers, ['A 10.7.0.2', 'AAAA fd07::2']);
});

test('truncation: TC over UDP at 512 (or the EDNS size), full answer over TCP; dig and Node retry', async (t) => {
  const c = await start(t);
  for (let i = 0; i < 60; i++) await c.writer.put(keys.endpoint('n1', `m${i}`), endpoint(`m${i}`, `m${i}`, [`10.7.1.${i + 1}/16`], { aliases: ['many'] }));
  await until(async () => (await aRecords(c, 'm59')).length > 0, 2000);
  const udp = await dig(['@' + c.host, '-p', String(c.port), '+noedns', '+ignore', 'many']);
  t.true(udp.flags.includes('tc'), udp.raw);
  t.is(udp.answers.length, 30, 'as many as fit in 512 bytes');
  const raw = await udpAsk(c.host, c.port, buildQuery('many', T.A, { edns: 4096 }));
  t.is(raw!.length <= 1232, true, 'EDNS replies are capped at 1232');
  t.is(decodeMessage(raw!)!.answers.length, 60, '60 × 16 bytes fit in 1232');
  const retried = await dig(['@' + c.host, '-p', String(c.port), '+noedns', 'many']);
  t.is(retried.answers.length, 60, 'dig retried over TCP');
  const resolver = new dnsp.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`${c.host}:${c.port}`]);
  t.is((await resolver.resolve4('many')).length, 60, 'c-ares retried over TCP');
});

function openSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => resolve(s));
    s.on('error', reject);
  });
}

test('slow and idle TCP clients never block others, and are dropped (CVE-2024-8418)', async (t) => {
  const c = await start(t, { tcp: { idleMs: 1500, messageMs: 1500, maxConnections: 20 } });
  await c.writer.put(keys.endpoint('n1', 'e1'), endpoint('e1', 'web', ['10.7.0.2/24']));
  await until(async () => (await aRecords(c, 'web')).length > 0, 2000);
  const idle = await Promise.all(Array.from({ length: 25 }, () => openSocket(c.host, c.port)));
  const closed = idle.map((s) => new Promise<void>((r) => s.on('close', () => r())));
  t.teardown(() => idle.forEach((s) => s.destroy()));
  // A slowloris: announces 40 bytes, sends 3, then nothing.
  idle[0]!.write(Buffer.from([0, 40, 1, 2, 3]));
  const t0 = performance.now();
  t.deepEqual(await aRecords(c, 'web'), ['10.7.0.2']);
  const tcp = await tcpAsk(c.host, c.port, [buildQuery('web', T.A)]);
  t.is(decodeMessage(tcp[0]!)!.answers.length, 1, 'a new TCP client is served past the connection cap');
  const ms = performance.now() - t0;
  t.true(ms < 1000, `answered after ${ms.toFixed(0)} ms, before any idle connection timed out`);
  const allClosed = await Promise.race([Promise.all(closed).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5000))]);
  t.true(allClosed, 'idle and slow connections were closed');
});

async function stub(t: Teardown, mode?: StubMode): Promise<StubUpstream> {
  const s = await startStubUpstream('127.0.0.1', 0, { mode });
  t.teardown(() => s.close());
  return s;
}

test('forwarding: other names go upstream; failover past silent, spoofed, wrong-ID and wrong-question replies', async (t) => {
  const silent = await stub(t, 'silent');
  const spoof = await stub(t, 'wrong-source');
  const wrongId = await stub(t, 'wrong-id');
  const ok = await stub(t);
  const host = '127.0.0.1';
  const c = await start(t, { upstreams: [{ host, port: ok.port }], forwardTimeoutMs: 1500 });
  const r = await dig(['@' + c.host, '-p', String(c.port), 'www.example.test']);
  t.deepEqual(r.answers, ['A 192.0.2.53']);
  t.true(r.flags.includes('ra'));
  t.is(ok.received.at(-1)!.name, 'www.example.test');

  for (const bad of [silent, spoof, wrongId]) {
    const c2 = await start(t, { upstreams: [{ host, port: bad.port }, { host, port: ok.port }], forwardTimeoutMs: 500 });
    const d = await dig(['@' + c2.host, '-p', String(c2.port), 'a.example.test']);
    t.deepEqual(d.answers, ['A 192.0.2.53'], `failover from ${bad.port}`);
    t.is(bad.received.at(-1)?.name, 'a.example.test', 'the first upstream was asked');
  }
  const wrongQ = await stub(t, 'wrong-question');
  const c3 = await start(t, { upstreams: [{ host, port: wrongQ.port }], forwardTimeoutMs: 250 });
  t.is((await dig(['@' + c3.host, '-p', String(c3.port), 'b.example.test'])).status, 'SERVFAIL', 'no usable reply');
});

test('forwarding: an upstream reply too big for the client is sent as TC; TCP clients are forwarded over TCP', async (t) => {
  const huge = await stub(t, 'huge');
  const c0 = await start(t, { upstreams: [{ host: '127.0.0.1', port: huge.port }] });
  const h = decodeMessage((await udpAsk(c0.host, c0.port, buildQuery('huge.example.test', T.A)))!)!;
  t.truthy(h.flags & 0x0200, 'an upstream reply over the client size becomes TC');
  t.is(h.answers.length, 0, 'and is not cut (it is not ours)');
  const big = await stub(t, 'big');
  const c = await start(t, { upstreams: [{ host: '127.0.0.1', port: big.port }] });
  const m = decodeMessage((await udpAsk(c.host, c.port, buildQuery('big.example.test', T.A)))!)!;
  t.truthy(m.flags & 0x0200, 'TC');
  t.is(m.answers.length, Math.floor((512 - 12 - 22) / 16), 'the upstream\'s own truncated reply is relayed');
  const e = decodeMessage((await udpAsk(c.host, c.port, buildQuery('big2.example.test', T.A, { edns: 4096 })))!)!;
  t.is(big.received.at(-1)!.ednsSize, 1232, 'the EDNS size asked upstream is clamped to ours');
  t.truthy(e.flags & 0x0200, 'the upstream truncated to that size itself');
  t.is(e.answers.length, Math.floor((1232 - 11 - 12 - 22) / 16), 'and its partial answer is relayed');
  const d = await dig(['@' + c.host, '-p', String(c.port), '+noedns', 'big.example.test']);
  t.is(d.answers.length, 100);
  t.true(big.received.some((q) => q.tcp), 'retried upstream over TCP');
  t.is(m.rcode, RCODE.NOERROR);
});

test('IPv6: listening on ::1 over UDP and TCP', async (t) => {
  const c = await start(t, { listen: [{ host: '::1', port: 0 }] });
  await c.writer.put(keys.endpoint('n1', 'e6'), endpoint('e6', 'six', ['fd07::6/64', '10.7.0.6/24']));
  const seen = await until(async () => {
    const r = await udpAsk('::1', c.port, buildQuery('six', T.AAAA), { timeoutMs: 500 });
    return r && decodeMessage(r)!.answers.length > 0;
  }, 2000);
  t.truthy(seen.value);
  t.deepEqual((await dig(['@::1', '-p', String(c.port), '+tcp', 'six', 'AAAA'])).answers, ['AAAA fd07::6']);
  t.deepEqual((await dig(['@::1', '-p', String(c.port), '-x', 'fd07::6'])).answers, ['PTR six.front.tsoverlay.']);
});
