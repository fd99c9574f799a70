import test from 'ava';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, readConfigFile, configFromEnv, ConfigError, resolvConfNameservers } from '../../daemon/config.js';

test('defaults are the ones DESIGN.md documents', (t) => {
  const cfg = resolveConfig([]);
  t.is(cfg.stateDir, '/var/lib/tsoverlay');
  t.is(cfg.store, 'sqlite:///var/lib/tsoverlay/store.db');
  t.is(cfg.pluginDir, '/run/docker/plugins');
  t.is(cfg.socket, '/run/tsoverlay/tsoverlay.sock');
  t.is(cfg.dnsDomain, 'tsoverlay.');
  t.is(cfg.dnsPort, 53);
  t.is(cfg.dockerHost, 'unix:///var/run/docker.sock');
  t.is(cfg.logLevel, 'info');
  t.is(cfg.advertise, undefined);
});

test('the default store follows --state-dir', (t) => {
  const cfg = resolveConfig([{ source: 'flags', values: { stateDir: '/srv/tso' } }]);
  t.is(cfg.store, 'sqlite:///srv/tso/store.db');
});

test('flags override the environment, which overrides the file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tso-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, 'hostId: from-file\ndnsPort: 5353\nlogLevel: debug\ndnsUpstream: [10.0.0.1, "10.0.0.2:5300"]\n');
  const env = configFromEnv({ TSOVERLAY_HOST_ID: 'from-env', TSOVERLAY_DNS_DOMAIN: 'Cluster.Local' });
  const cfg = resolveConfig([
    { source: 'file', values: readConfigFile(file) },
    { source: 'environment', values: env },
    { source: 'flags', values: { hostId: 'from-flag', dnsPort: undefined } },
  ]);
  t.is(cfg.hostId, 'from-flag');
  t.is(cfg.dnsPort, 5353);
  t.is(cfg.logLevel, 'debug');
  t.is(cfg.dnsDomain, 'cluster.local.');
  t.deepEqual(cfg.dnsUpstream, [
    { host: '10.0.0.1', port: 53 },
    { host: '10.0.0.2', port: 5300 },
  ]);
});

test('a JSON config file works too', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tso-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ store: 'etcd://127.0.0.1:2379/tso', metrics: '127.0.0.1:9300' }));
  const cfg = resolveConfig([{ source: 'file', values: readConfigFile(file) }]);
  t.is(cfg.store, 'etcd://127.0.0.1:2379/tso');
  t.deepEqual(cfg.metrics, { host: '127.0.0.1', port: 9300 });
});

const bad: [string, Record<string, unknown>, RegExp][] = [
  ['unknown key', { stateDirectory: '/x' }, /unknown key "stateDirectory"/],
  ['relative state dir', { stateDir: 'var/lib' }, /stateDir: expected an absolute path, got "var\/lib"/],
  ['port out of range', { dnsPort: 70000 }, /dnsPort: expected a port 1-65535, got 70000/],
  ['bad store url', { store: 'redis://x' }, /store: expected sqlite:.*got "redis:\/\/x"/],
  ['bad advertise', { advertise: '10.0.0.300' }, /advertise: expected an IP address, got "10.0.0.300"/],
  ['bad log level', { logLevel: 'loud' }, /logLevel: expected one of .* got "loud"/],
  ['bad host id', { hostId: 'a/b' }, /hostId: .* got "a\/b"/],
  ['too many upstreams', { dnsUpstream: '1.1.1.1,1.0.0.1,8.8.8.8,8.8.4.4' }, /dnsUpstream: expected 1 to 3 resolvers, got 4/],
  ['bad metrics', { metrics: 'localhost' }, /metrics: expected IP:PORT, got "localhost"/],
];
for (const [title, values, message] of bad) {
  test(`a bad value stops with a message naming it: ${title}`, (t) => {
    const err = t.throws(() => resolveConfig([{ source: 'config file /etc/x.yaml', values }]), { instanceOf: ConfigError });
    t.regex(err!.message, message);
    t.regex(err!.message, /^config file \/etc\/x.yaml: /);
  });
}

test('a config file that is not a mapping is refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tso-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, '- a\n- b\n');
  t.throws(() => readConfigFile(file), { message: /expected a mapping/ });
  t.throws(() => readConfigFile(join(dir, 'missing.yaml')), { message: /missing.yaml/ });
});

test('resolv.conf nameservers: at most three, comments and zones handled', (t) => {
  const text = '# x\nnameserver 10.0.0.2\nsearch example\nnameserver fe80::1%eth0\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n';
  t.deepEqual(resolvConfNameservers(text), [
    { host: '10.0.0.2', port: 53 },
    { host: 'fe80::1', port: 53 },
    { host: '1.1.1.1', port: 53 },
  ]);
});
