// Regression tests for the hardening findings of issue #10 that concern input (config files,
// CLI flags and words, store records, the local API): one minimal input each, real processes
// and sockets, no namespace needed.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, readConfigFile } from '../../daemon/config.js';
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
