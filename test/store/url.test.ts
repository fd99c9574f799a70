// Store URL parsing and openStore's handling of the embedded store path (no server needed).
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreError } from '../../store/errors.js';
import { defaultStoreUrl, openStore } from '../../store/open.js';
import { parseStoreUrl, redact } from '../../store/url.js';
import { prefixEnd } from '../../store/range-end.js';

test('sqlite URLs name an absolute file', (t) => {
  t.deepEqual(parseStoreUrl('sqlite:///var/lib/tsoverlay/store.db'), {
    kind: 'sqlite',
    file: '/var/lib/tsoverlay/store.db',
    description: 'sqlite:///var/lib/tsoverlay/store.db',
  });
  t.is(defaultStoreUrl('/var/lib/tsoverlay'), 'sqlite:///var/lib/tsoverlay/store.db');
  for (const bad of ['sqlite://relative.db', 'sqlite:///dir/', 'sqlite:///x.db?mode=ro', 'sqlite:///proc/x/store.db', 'sqlite:///sys/s.db']) {
    const err = t.throws(() => parseStoreUrl(bad), { instanceOf: StoreError });
    t.is(err?.code, 'bad-request');
    t.true(err?.message.includes(bad), 'the message names the URL');
  }
});

test('etcd URLs: several hosts, prefix, TLS and credentials', (t) => {
  const a = parseStoreUrl('etcd://h1:2379,10.0.0.2:2379,[fd00::1]:2379/cluster-a');
  t.like(a, { kind: 'etcd', description: 'etcd://h1:2379,10.0.0.2:2379,[fd00::1]:2379/cluster-a' });
  if (a.kind !== 'etcd') return;
  t.deepEqual(a.config.endpoints, ['http://h1:2379', 'http://10.0.0.2:2379', 'http://[fd00::1]:2379']);
  t.is(a.config.prefix, '/cluster-a');
  t.is(a.config.tls, undefined);

  const b = parseStoreUrl('etcds://u:p%40ss@h1:2379?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&timeoutMs=3000');
  if (b.kind !== 'etcd') return t.fail();
  t.deepEqual(b.config.endpoints, ['https://h1:2379']);
  t.deepEqual(b.config.auth, { username: 'u', password: 'p@ss' });
  t.deepEqual(b.config.tls, { caFile: '/etc/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
  t.is(b.config.timeoutMs, 3000);
  t.is(b.description, 'etcds://u@h1:2379');
  t.false(b.description.includes('p%40ss') || b.description.includes('p@ss'));

  const c = parseStoreUrl('etcd://h1:2379/?user=root&password=x');
  if (c.kind !== 'etcd') return t.fail();
  t.deepEqual(c.config.auth, { username: 'root', password: 'x' });
  t.is(c.config.prefix, '');
});

test('bad etcd URLs are refused with the password redacted', (t) => {
  for (const bad of ['etcd://', 'etcd://h1', 'etcd://h1:99999', 'etcd://h 1:2379', 'etcd://h1:2379/../x', 'etcd://h1:2379?foo=1', 'etcd://h1:2379?cert=/c.pem', 'redis://h:1', 'nonsense']) {
    const err = t.throws(() => parseStoreUrl(bad), { instanceOf: StoreError }, bad);
    t.is(err?.kind, 'bad-request');
  }
  const err = t.throws(() => parseStoreUrl('etcd://root:hunter2@h1?x=1'), { instanceOf: StoreError });
  t.false(err?.message.includes('hunter2'));
  t.is(redact('etcd://h:1?user=a&password=zz'), 'etcd://h:1?user=a&password=***');
});

test('openStore creates the directory of a SQLite store and refuses a bad URL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-url-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a', 'b', 'store.db');
  const s = await openStore(`sqlite://${file}`);
  t.teardown(() => s.close());
  t.true(existsSync(file));
  t.is(statSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
  t.is(s.description, `sqlite://${file}`);
  await t.throwsAsync(openStore('etcd:/nope'), { instanceOf: StoreError, message: /etcd:\/nope/ });
});

test('prefixEnd is the exclusive end of a prefix in code-point order', (t) => {
  t.is(prefixEnd('/a/'), '/a0');
  t.is(prefixEnd('ab'), 'ac');
  t.is(prefixEnd(''), undefined);
  t.is(prefixEnd('a\u{10FFFF}'), 'b');
  t.is(prefixEnd('\uD7FF'), '\uE000');
  const end = prefixEnd('x/é')!;
  for (const k of ['x/é', 'x/é/more', 'x/é\u{10FFFF}']) t.true(k < end || Buffer.compare(Buffer.from(k), Buffer.from(end)) < 0, k);
});
