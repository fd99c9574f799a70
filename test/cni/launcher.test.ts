// The compiled CNI launcher (bin/launcher/): VERSION byte-identical to the Node entry; via a
// daemon its output equals the Node executable's (same runCni, reply:"exec"); a stalled or
// broken daemon is a bounded CNI error 11; no daemon, a daemon without the route, odd input
// or its own netns → the Node entry. The whole kernel suites run on launchers through
// launcher-suite.test.ts (TSOT_CNI_LAUNCHER=1 selects them for any test/cni run).
import test from 'ava';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serveHandOff } from '../../plugins/cni/handoff-server.js';
import { runCni, type PluginHandlers, type PluginSpec } from '../../plugins/cni/skel.js';
import { IpamError } from '../../ipam/errors.js';
import { tryRun } from '../harness/exec.js';
import { LAUNCHER, ROOT, launcherBuilt, tempDir, type Teardown } from './harness.js';

const built = launcherBuilt();
const ltest = built ? test : test.skip;
if (!built) test('launcher tests need `npm run build` (dist/bin/cni-launcher)', (t) => t.pass());

const LOADER = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const attach = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/tsot-none', CNI_IFNAME: 'eth0' };

/** A launcher installed as `name` whose Node entries are the TypeScript ones (through tsx), logging each start. */
async function install(t: Teardown, name = 'tsbridge'): Promise<{ dir: string; file: string; nodeLog: string }> {
  const dir = await tempDir(t, 'launch');
  const dist = join(dir, 'entries');
  const nodeLog = join(dir, 'node-starts');
  await tryRun('mkdir', ['-p', join(dist, 'bin')]);
  await writeFile(join(dist, 'package.json'), '{"type":"module"}\n');
  for (const p of ['tsbridge', 'tshost', 'tsipam', 'tsportmap', 'tsoverlay']) {
    const entry = pathToFileURL(join(ROOT, 'bin', `${p}.ts`)).href;
    await writeFile(join(dist, 'bin', `${p}.js`), `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(nodeLog)}, '${p}\\n');\nawait import(${JSON.stringify(LOADER)});\nawait import(${JSON.stringify(entry)});\n`);
  }
  await writeFile(join(dir, 'tsoverlay-launcher.conf'), `node=${process.execPath}\ndist=${dist}\n`);
  await copyFile(LAUNCHER, join(dir, name));
  return { dir, file: join(dir, name), nodeLog };
}

async function nodeStarts(log: string): Promise<number> {
  const r = await tryRun('cat', [log]);
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean).length : 0;
}

function run(file: string, env: Record<string, string>, input: string, timeoutMs = 20_000) {
  return tryRun(file, [], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, input, timeoutMs });
}

ltest('VERSION: the launcher prints exactly what the Node entry prints, without starting Node', async (t) => {
  const { file, nodeLog } = await install(t);
  const deep = '['.repeat(300) + ']'.repeat(300);
  const inputs = [
    '{"cniVersion":"1.0.0"}', '{"cniVersion":"0.3.1","name":"x"}', '', 'not json', '{"cniVersion":"1.0.0"', '"1.0.0"', '[1]',
    '{"cniVersion":"1.0.0","cniVersion":"0.4.0"}', '{"cniVersion":"1.0.0","cniVersion":7}', '{"cni\\u0056ersion":"0.4.0"}',
    '{"cniVersion":"12345.0.0"}', '{"cniVersion":"1.0.0 "}', '{"cniVersion":"9.9.9"}', '\ufeff{"cniVersion":"1.0.0"}',
    ' \n{"x":{"cniVersion":"0.3.0"},"cniVersion":"0.3.0"}\n', '{"a":[1,-2.5e3,true,null,"\\ud83d\\ude00"],"cniVersion":"1.1.0"}',
    '{"a":01,"cniVersion":"1.0.0"}', '{"a":"\u0001","cniVersion":"1.0.0"}', `{"d":${deep},"cniVersion":"0.4.0"}`,
  ];
  const node = join(ROOT, 'bin', 'tsbridge.ts');
  for (const input of inputs) {
    const env = { CNI_COMMAND: 'VERSION' };
    const [a, b] = await Promise.all([run(file, env, input), tryRun(process.execPath, ['--import', LOADER, node], { env: { PATH: process.env.PATH ?? '', ...env }, input })]);
    t.is(a.stdout, b.stdout, `input ${JSON.stringify(input.slice(0, 60))}`);
    t.is(a.code, 0);
  }
  // Only the 300-deep document (beyond the launcher's walk) went to Node.
  t.is(await nodeStarts(nodeLog), 1);
});

/** A test daemon answering POST /v1/cni with serveHandOff over `spec`; records request bodies. */
async function daemon(t: Teardown, socket: string, spec: PluginSpec, seen: Array<Record<string, unknown>>): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', async () => {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      seen.push(parsed);
      const reply = await serveHandOff(parsed, (n) => (n === spec.name ? spec : undefined));
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return server;
}

const handlers: PluginHandlers = {
  async add(req) {
    if (req.conf.fail) throw new IpamError('pool-exhausted', 'no free address in 10.9.0.0/30');
    return { interfaces: [{ name: 'd0', mac: '02:00:00:00:00:01' }], ips: [{ address: '10.9.0.2/30', gateway: '10.9.0.1', interface: 0 }], dns: { nameservers: ['10.9.0.1'] } };
  },
  async del() {},
  async check() {},
};

ltest('via a daemon: stdout, stderr and exit code equal the Node executable\'s, in every spec version', async (t) => {
  const { dir, file, nodeLog } = await install(t);
  const socket = join(dir, 'd.sock');
  const seen: Array<Record<string, unknown>> = [];
  const spec: PluginSpec = { name: 'tsbridge', about: 'test daemon', handlers };
  await daemon(t, socket, spec, seen);
  const cases: Array<[Record<string, string>, object]> = [];
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    cases.push([{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: v, name: 'n1', type: 'tsbridge', daemonSocket: socket }]);
    cases.push([{ CNI_COMMAND: 'CHECK', ...attach }, { cniVersion: v, name: 'n1', type: 'tsbridge', daemonSocket: socket }]);
  }
  cases.push([{ CNI_COMMAND: 'ADD', ...attach }, { cniVersions: ['0.4.0', '1.0.0'], name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket, fail: true }]);
  cases.push([{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '2.0.0', name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'ADD', ...attach, CNI_IFNAME: 'bad/if' }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'DEL', ...attach, CNI_ARGS: 'Bogus=1' }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'NOPE', ...attach }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.0.0', name: 'bad name!', daemonSocket: socket }]);
  cases.push([{ CNI_COMMAND: 'DEL', ...attach }, { cniVersion: '1.0.0', name: 'n1', daemonSocket: socket, prevResult: { cniVersion: '1.0.0', ips: 'x' } }]);
  for (const [env, conf] of cases) {
    const stdin = JSON.stringify(conf);
    const got = await run(file, env, stdin);
    let stdout = '';
    let stderr = '';
    const code = await runCni({ ...spec, about: 'local' }, {
      env, readStdin: async () => stdin, isOwnNetns: async () => false,
      stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) },
    });
    t.deepEqual({ code: got.code, stdout: got.stdout, stderr: got.stderr }, { code, stdout, stderr }, `${env.CNI_COMMAND} ${stdin}`);
  }
  t.is(seen.length, cases.length, 'every call went to the daemon');
  t.true(seen.every((b) => b.reply === 'exec' && b.plugin === 'tsbridge' && typeof b.stdin === 'string' && !('PATH' in (b.env as object))));
  t.is(await nodeStarts(nodeLog), 0, 'Node never started');
});

ltest('tsipam asks ipam.daemonSocket first, then daemonSocket; an empty or non-string one means the default', async (t) => {
  const { dir, file, nodeLog } = await install(t, 'tsipam');
  const a = join(dir, 'a.sock');
  const seenA: Array<Record<string, unknown>> = [];
  await daemon(t, a, { name: 'tsipam', about: 'a', handlers }, seenA);
  const conf = { cniVersion: '1.0.0', name: 'n1', daemonSocket: join(dir, 'none.sock'), ipam: { type: 'tsipam', daemonSocket: a } };
  const r = await run(file, { CNI_COMMAND: 'DEL', ...attach }, JSON.stringify(conf));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.is(seenA.length, 1);
  t.is(await nodeStarts(nodeLog), 0);
});

/** A unix socket that accepts and then does `onConn` (never answer, or hang up). */
async function rawServer(t: Teardown, socket: string, onConn: (s: Socket) => void): Promise<NetServer> {
  const conns: Socket[] = [];
  const server = createNetServer((s) => { conns.push(s); onConn(s); });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => { for (const c of conns) c.destroy(); server.close(() => resolve()); }));
  return server;
}

ltest('a stalled daemon is a bounded CNI error 11 (TSOVERLAY_CNI_HANDOFF_TIMEOUT_MS), never a hang or a local retry', async (t) => {
  const { dir, file, nodeLog } = await install(t);
  const stalled = join(dir, 'stalled.sock');
  await rawServer(t, stalled, () => {});
  const conf = JSON.stringify({ cniVersion: '0.4.0', name: 'n1', daemonSocket: stalled });
  const t0 = Date.now();
  const r = await run(file, { CNI_COMMAND: 'ADD', ...attach, TSOVERLAY_CNI_HANDOFF_TIMEOUT_MS: '700' }, conf, 10_000);
  const took = Date.now() - t0;
  t.is(r.code, 1);
  t.deepEqual(JSON.parse(r.stdout), { cniVersion: '0.4.0', code: 11, msg: `daemon on ${stalled} did not answer within 700 ms` });
  t.true(took >= 650 && took < 5_000, `took ${took} ms`);
  // One that hangs up mid-exchange: 11 at once.
  const rude = join(dir, 'rude.sock');
  await rawServer(t, rude, (s) => s.destroy());
  const r2 = await run(file, { CNI_COMMAND: 'DEL', ...attach }, JSON.stringify({ cniVersion: '1.0.0', name: 'n1', daemonSocket: rude }), 10_000);
  t.is(r2.code, 1);
  t.is(JSON.parse(r2.stdout).code, 11);
  // One that answers something else: an error, not a silent success.
  const odd = join(dir, 'odd.sock');
  await rawServer(t, odd, (s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')));
  const r3 = await run(file, { CNI_COMMAND: 'DEL', ...attach }, JSON.stringify({ cniVersion: '1.0.0', name: 'n1', daemonSocket: odd }), 10_000);
  t.is(r3.code, 1);
  t.is(JSON.parse(r3.stdout).code, 999);
  t.is(await nodeStarts(nodeLog), 0, 'delivered requests are never run again locally');
});

ltest('no daemon, a daemon without the route, stdin that is not an object, its own netns, no CNI_COMMAND: the Node entry runs', async (t) => {
  const { dir, file, nodeLog } = await install(t);
  // A daemon without /v1/cni: the launcher and then the Node entry each get 404; Node goes standalone.
  const old = join(dir, 'old.sock');
  let hits = 0;
  const server = createServer((_req, res) => { hits++; res.writeHead(404).end('{}'); });
  await new Promise<void>((resolve) => server.listen(old, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const store = `sqlite://${join(dir, 'store.db')}`;
  const del = await run(file, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', TSOVERLAY_CNI_LOCK_DIR: dir }, JSON.stringify({ cniVersion: '1.0.0', name: 'n1', type: 'tsbridge', store, daemonSocket: old, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.9.0.0/24' }]] } }), 60_000);
  t.is(del.code, 0, del.stdout + del.stderr);
  const afterDel = hits;
  t.true(hits >= 2, `the launcher and then Node asked (${hits})`);
  t.is(await nodeStarts(nodeLog), 1);
  // stdin that is not a JSON object: Node's decode error (6), stdin bytes passed on intact.
  const bad = await run(file, { CNI_COMMAND: 'ADD', ...attach }, '[1,2');
  t.is(JSON.parse(bad.stdout).code, 6);
  // Our own namespace: Node's refusal (4); nothing reaches a daemon.
  const own = await run(file, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: `/proc/${process.pid}/ns/net` }, JSON.stringify({ cniVersion: '1.0.0', name: 'n1', daemonSocket: old }));
  t.is(JSON.parse(own.stdout).code, 4);
  t.regex(JSON.parse(own.stdout).msg, /own network namespace/);
  t.is(hits, afterDel);
  // No CNI_COMMAND: the entry's usage line.
  const about = await run(file, {}, '');
  t.is(about.code, 0);
  t.regex(about.stderr, /tsbridge: tsoverlay bridge CNI plugin/);
  t.is(await nodeStarts(nodeLog), 4);
  // Another name: a usage error, no Node.
  await copyFile(LAUNCHER, join(dir, 'other'));
  const other = await run(join(dir, 'other'), { CNI_COMMAND: 'VERSION' }, '');
  t.is(other.code, 2);
  t.regex(other.stderr, /install me as tsbridge/);
});

ltest('install cni: launcher copies (not links) and tsoverlay-launcher.conf; launcher:false goes back to the Node entries', async (t) => {
  const { installCni, LAUNCHER_CONF } = await import('../../plugins/cni/install.js');
  const { lstat, readFile, mkdir } = await import('node:fs/promises');
  const tmp = await tempDir(t, 'linst');
  const dist = join(tmp, 'dist');
  await mkdir(join(dist, 'bin'), { recursive: true });
  await writeFile(join(tmp, 'package.json'), '{"type":"module"}\n');
  for (const p of ['tsbridge', 'tshost', 'tsipam', 'tsportmap', 'tsoverlay']) await writeFile(join(dist, 'bin', `${p}.js`), `process.stdout.write('node entry ${p}\\n');\n`);
  await copyFile(LAUNCHER, join(dist, 'bin', 'cni-launcher'));
  const bin = join(tmp, 'cni', 'bin');
  const r = await installCni(bin, { distDir: dist, confDir: false, nodePath: process.execPath });
  t.deepEqual(r.plugins.map((p) => p.kind), ['launcher', 'launcher', 'launcher', 'launcher', 'launcher']);
  const launcherBytes = await readFile(LAUNCHER);
  for (const p of r.plugins) {
    t.true((await lstat(p.path)).isFile(), `${p.name} is a copy`);
    t.true(launcherBytes.equals(await readFile(p.path)));
  }
  t.is(await readFile(join(bin, LAUNCHER_CONF), 'utf8'), `# Written by tsoverlay install cni: where the CNI launchers find Node and the JS entries.\nnode=${process.execPath}\ndist=${dist}\n`);
  // VERSION from the launcher itself; anything else reaches the entry the conf names.
  const v = await run(join(bin, 'tshost'), { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
  t.is(JSON.parse(v.stdout).cniVersion, '0.4.0');
  t.is((await run(join(bin, 'tsportmap'), {}, '')).stdout, 'node entry tsportmap\n');
  const back = await installCni(bin, { distDir: dist, confDir: false, launcher: false });
  t.true(back.plugins.every((p) => p.kind === 'symlink'));
  t.true((await lstat(join(bin, 'tsbridge'))).isSymbolicLink());
  await t.throwsAsync(lstat(join(bin, LAUNCHER_CONF)));
});

ltest('VERSION on 400 mutated documents: the launcher agrees with fast-entry.ts versionAnswer()', async (t) => {
  const { versionAnswer } = await import('../../plugins/cni/fast-entry.js');
  const { file } = await install(t);
  // A small deterministic generator (xorshift): the same cases every run.
  let seed = 0x2545f491;
  const rnd = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const bases = [
    '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"tsbridge","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}}]}',
    '{"a":{"cniVersion":"0.3.0"},"cniVersion":"0.4.0","b":[true,false,null,-1.5e+3,"x\\"y\\\\z\\u0041"]}',
    ' {"cniVersion" : "0.3.1" , "cniVersions":["1.0.0"]} ',
  ];
  const alphabet = ['{', '}', '[', ']', '"', ',', ':', '\\', 'u', '0', '1', '.', 'e', '-', ' ', '\n', 'a', '\u0001', 'é', 'cniVersion', '"1.1.0"', '"9.99.999"'];
  const cases: string[] = [];
  for (let i = 0; i < 400; i++) {
    let s = bases[rnd(bases.length)]!;
    for (let k = rnd(3) + 1; k > 0; k--) {
      const at = rnd(s.length + 1);
      s = rnd(2) ? s.slice(0, at) + alphabet[rnd(alphabet.length)] + s.slice(at) : s.slice(0, at) + s.slice(at + 1 + rnd(3));
    }
    cases.push(s);
  }
  let differ = 0;
  for (let i = 0; i < cases.length; i += 20) {
    const batch = cases.slice(i, i + 20);
    const outs = await Promise.all(batch.map((input) => run(file, { CNI_COMMAND: 'VERSION' }, input)));
    outs.forEach((o, j) => {
      if (o.stdout !== versionAnswer(batch[j]!)) {
        differ++;
        t.log(JSON.stringify(batch[j]), o.stdout, versionAnswer(batch[j]!));
      }
    });
  }
  t.is(differ, 0);
  t.true(cases.filter((c) => JSON.parse(versionAnswer(c)).cniVersion !== '1.1.0').length > 20, 'the cases echo versions, not only the default');
});

ltest('the hand-off carries stdin and CNI_* values byte-exact, and prints the reply exactly (escapes, unicode, control characters)', async (t) => {
  const { dir, file } = await install(t);
  const socket = join(dir, 'echo.sock');
  const got: Array<{ env: Record<string, string>; stdin: string }> = [];
  // A daemon that answers with what it received (stdout) and a fixed awkward stderr.
  const awkward = 'ctl\u0001\u001f tab\t nl\n quote" back\\ slash/ é ☃ 😀 \u2028 \ud800 end';
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      const b = JSON.parse(body) as { env: Record<string, string>; stdin: string };
      got.push(b);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ exitCode: 7, stdout: b.stdin + awkward, stderr: awkward }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const values = ['plain', 'tab\tnl\nquote"back\\', 'é☃😀\u2028', '{"json":[1]}', ' ', ''];
  for (const v of values) {
    const stdin = `{"cniVersion":"1.0.0","name":"n","daemonSocket":${JSON.stringify(socket)},"v":${JSON.stringify(v)},"raw":"${v.replace(/[\\"\n\t]/g, '')}\u00a0"}`;
    const r = await run(file, { CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: `K8S_POD_NAME=${v}` }, stdin);
    t.is(r.code, 7);
    t.is(r.stdout, stdin + Buffer.from(awkward).toString('utf8'));
    t.is(r.stderr, Buffer.from(awkward).toString('utf8'));
    const last = got[got.length - 1]!;
    t.is(last.stdin, stdin);
    t.deepEqual(last.env, { CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: `K8S_POD_NAME=${v}` });
  }
});
