// Regression tests for the hardening findings of issue #10 that concern input (config files,
// CLI flags and words, store records, the local API): one minimal input each, real processes
// and sockets, no namespace needed.
import test from 'ava';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, readConfigFile } from '../../daemon/config.js';
import { startLocalApi } from '../../daemon/local-api.js';
import { createLogger } from '../../daemon/log.js';
import { echoWord, MAX_ECHO, sanitizeCliError } from '../../daemon/cli-text.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import { tryRun } from '../harness/exec.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'tsoverlay.ts');
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-hard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cli(args: string[]) {
  return tryRun(process.execPath, ['--import=tsx', CLI, ...args], { cwd: ROOT, timeoutMs: 60_000 });
}

test('config: an unknown YAML tag is refused naming the key (it was read as a string)', (t) => {
  const dir = tempDir(t);
  const cases: [string, RegExp][] = [
    ['logLevel: !foo debug\n', /key "logLevel": unknown YAML tag "!foo" \(line 1\)/],
    ['logLevel: info\ndnsUpstream:\n  - !bar 1.1.1.1\n', /key "dnsUpstream": unknown YAML tag "!bar" \(line 3\)/],
    ['!foo\nlogLevel: info\n', /document: unknown YAML tag "!foo"/],
  ];
  for (const [text, re] of cases) {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, text);
    const err = t.throws(() => readConfigFile(file), { instanceOf: ConfigError }, text);
    t.regex(err!.message, re);
    t.true(err!.message.startsWith(`config file ${file}: `));
  }
  // Tags the schema knows still work.
  writeFileSync(join(dir, 'ok.yaml'), 'logLevel: !!str debug\ndnsPort: !!int 5353\n');
  t.deepEqual(readConfigFile(join(dir, 'ok.yaml')), { logLevel: 'debug', dnsPort: 5353 });
});

test('cli: ipam ls --pool "" and endpoint ls --network "" name the flag and the value', async (t) => {
  const dir = tempDir(t);
  const store = `sqlite://${join(dir, 'store.db')}`;
  for (const [args, flag] of [[['ipam', 'ls', '--pool', ''], '--pool'], [['endpoint', 'ls', '--network', ''], '--network']] as const) {
    const r = await cli([...args, '--store', store]);
    t.is(r.code, 1, r.stderr);
    t.is(r.stderr, `tsoverlay: ${flag} "": expected an id, got an empty value\n`);
  }
  const long = await cli(['ipam', 'ls', '--pool', 'p'.repeat(5000), '--store', store]);
  t.is(long.code, 1);
  t.regex(long.stderr, /^tsoverlay: --pool "p{80}"… \(5000 characters\): key segment longer than/);
});

test('cli: host ls lists the readable hosts and names a corrupt record on stderr', async (t) => {
  const dir = tempDir(t);
  const url = `sqlite://${join(dir, 'store.db')}`;
  const store = await openStore(url);
  try {
    await store.put(keys.host('good'), JSON.stringify({ id: 'good', advertise: '10.1.0.1', version: '0.1.0', pid: 1, startedAt: 'x' }));
    await store.put(keys.host('bad'), '{"id": "bad", trunc');
  } finally {
    await store.close();
  }
  const r = await cli(['host', 'ls', '--json', '--store', url]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), [{ id: 'good', advertise: '10.1.0.1', alive: false }]);
  t.regex(r.stderr, /^tsoverlay: skipping host record "\/tsoverlay\/v1\/hosts\/bad": not JSON \(.*\)\n$/);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  // Nothing readable at all: the same line, and exit 1.
  const only = await openStore(url);
  await only.delete(keys.host('good')).finally(() => only.close());
  const none = await cli(['host', 'ls', '--store', url]);
  t.is(none.code, 1);
  t.regex(none.stderr, /skipping host record ".*bad"/);
});

test('cli: unknown commands and options are echoed escaped and capped', async (t) => {
  const word = `foo\u001b[31mbar\nnext`;
  const r = await cli([word]);
  t.is(r.code, 1);
  t.is(r.stderr, "error: unknown command 'foo\\u001b[31mbar\\nnext'\n");
  const huge = 'a'.repeat(100_000);
  const h = await cli(['host', 'ls', `--${huge}=1`]);
  t.is(h.code, 1);
  t.false(CONTROL.test(h.stderr));
  t.true(h.stderr.length < 200, h.stderr.slice(0, 300));
  t.regex(h.stderr, /^error: unknown option '--a{62}…\(100004 characters\)'\n$/);
  // Pure: a word is escaped once even when it also appears inside a longer one.
  t.is(sanitizeCliError("error: unknown command 'a\tb'", ['a\tb', 'x']), "error: unknown command 'a\\tb'");
  t.is(echoWord('\u202e'), '\\u202e');
  t.is(echoWord('x'.repeat(MAX_ECHO + 1)), `${'x'.repeat(MAX_ECHO)}…(${MAX_ECHO + 1} characters)`);
});

/** One raw HTTP request over a unix socket. */
function request(socket: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function localApi(t: { teardown(fn: () => unknown): void }, socket: string) {
  const api = await startLocalApi({
    socket,
    log: createLogger('silent'),
    status: () => ({ hostId: 'h', advertise: null, store: 's', version: 'v', pid: 1, startedAt: 'x' }),
    cni: async (body) => ({ status: 200, body: { echoed: body } }),
  });
  t.teardown(() => api.close());
  return api;
}

test('local API: a broken JSON body is 400 with the reason, a huge one 413; a good one still served', async (t) => {
  const dir = tempDir(t);
  const socket = join(dir, 'run', 'tsoverlay.sock');
  await localApi(t, socket);
  const broken = await request(socket, 'POST', '/v1/cni', '{"plugin": "tsbridge",');
  t.is(broken.status, 400, broken.body);
  t.is(JSON.parse(broken.body).code, 'bad-request');
  t.regex(JSON.parse(broken.body).message, /^request body is not valid JSON: /);
  const huge = await request(socket, 'POST', '/v1/cni', JSON.stringify({ x: 'y'.repeat(2 * 1024 * 1024) }));
  t.is(huge.status, 413);
  t.is(JSON.parse(huge.body).code, 'bad-request');
  const ok = await request(socket, 'POST', '/v1/cni', '{"a":1}');
  t.deepEqual({ status: ok.status, body: JSON.parse(ok.body) }, { status: 200, body: { echoed: { a: 1 } } });
});

test('local API: the socket appears with mode 0600 (bound privately, renamed in), and a live one is not taken over', async (t) => {
  const dir = tempDir(t);
  const run = join(dir, 'run');
  mkdirSync(run);
  const socket = join(run, 'tsoverlay.sock');
  // Every time the name shows up in the directory, its mode at that moment.
  const seen: number[] = [];
  const watcher = watch(run, (_event, name) => {
    if (name !== 'tsoverlay.sock') return;
    try {
      seen.push(lstatSync(socket).mode & 0o777);
    } catch {
      // gone again
    }
  });
  t.teardown(() => watcher.close());
  const old = process.umask(0);
  let api;
  try {
    api = await localApi(t, socket);
  } finally {
    process.umask(old);
  }
  t.is(lstatSync(socket).mode & 0o777, 0o600);
  t.true(seen.every((m) => m === 0o600), `modes seen: ${seen.map((m) => m.toString(8)).join(',')}`);
  t.deepEqual(readdirSync(run), ['tsoverlay.sock'], 'no temporary directory left');
  // A second API on the same path while the first serves: refused, the first keeps its socket.
  const second = await t.throwsAsync(localApi(t, socket));
  t.regex(second!.message, /another process is serving/);
  t.is((await request(socket, 'GET', '/v1/status')).status, 200);
  await api.close();
  // A stale socket (its server gone) is replaced.
  await localApi(t, socket);
  t.is((await request(socket, 'GET', '/v1/status')).status, 200);
});
