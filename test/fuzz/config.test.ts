// Fuzz: the daemon's configuration and store URLs — config files (JSON, YAML with anchors, tags, merges,
// several documents, broken text, raw bytes) through readConfigFile, and layers of file /
// environment / flag values through resolveConfig. Property: either a ConfigError whose
// message names the key (or the file), or a config in which every value is valid.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { CONFIG_KEYS, ConfigError, configFromEnv, LOG_LEVELS, readConfigFile, resolveConfig, type DaemonConfig, type RawConfig } from '../../daemon/config.js';
import { StoreError } from '../../store/errors.js';
import { parseStoreUrl } from '../../store/url.js';
import { ip, mutateBytes, mutateJson, mutateText, nastyNumber, nastyString, type Rng } from './gen.js';
import { fuzz, settings, show, violated } from './runner.js';

const FILE = 'test/fuzz/config.test.ts';

function validValues(rng: Rng): RawConfig {
  const all: RawConfig = {
    store: rng.pick(['sqlite:///var/lib/tsoverlay/store.db', 'etcd://127.0.0.1:2379', 'etcds://h1:2379,h2:2379/pfx']),
    stateDir: rng.pick(['/var/lib/tsoverlay', '/tmp/x y', '/']),
    hostId: rng.pick(['host-1', 'h1.example', 'a'.repeat(63)]),
    advertise: ip(rng),
    pluginDir: '/run/docker/plugins',
    socket: '/run/tsoverlay/tsoverlay.sock',
    metrics: rng.pick(['127.0.0.1:9100', '[::1]:9100', '0.0.0.0:1']),
    logLevel: rng.pick(LOG_LEVELS),
    dnsDomain: rng.pick(['tsoverlay.', 'cluster.local', 'A.B.']),
    dnsPort: rng.pick([53, '5353', 65535, 1]),
    dnsUpstream: rng.pick(['1.1.1.1', '10.0.0.1:5353,[fd00::1]:53', ['9.9.9.9', '8.8.8.8:53'], 'fd00::53']),
    dockerHost: rng.pick(['unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375']),
  };
  const out: RawConfig = {};
  for (const k of CONFIG_KEYS) if (rng.chance(0.5)) out[k] = all[k];
  return out;
}

function layerValues(rng: Rng): RawConfig {
  const base = validValues(rng);
  if (rng.chance(0.3)) return base;
  const m = mutateJson(rng, base, 3);
  if (rng.chance(0.1)) return { ...(m as RawConfig), [rng.pick(['stateDIR', 'state-dir', 'unknownKey', '__proto__', 'constructor', nastyString(rng)])]: nastyString(rng) };
  if (rng.chance(0.1)) return { [rng.pick(CONFIG_KEYS)]: rng.oneOf<unknown>(() => nastyNumber(rng), () => nastyString(rng), () => [nastyString(rng)], () => ({ a: 1 }), () => null) };
  return typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as RawConfig) : base;
}

/** YAML written by hand: the constructs a serialiser never emits. */
const YAML_SNIPPETS: readonly string[] = [
  'stateDir: &d /var/lib/x\npluginDir: *d\n',
  'base: &b {logLevel: debug}\n<<: *b\n',
  '<<: {hostId: h1}\n',
  'a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nf: &f [*e, *e]\ng: &g [*f, *f]\nh: [*g, *g]\n',
  'dnsPort: !!str 53\n', 'dnsPort: !!float 53\n', 'dnsPort: !!binary aGVsbG8=\n', 'stateDir: !!timestamp 2001-12-14\n', 'hostId: !custom x\n',
  'dnsPort: 0x35\n', 'dnsPort: 0o65\n', 'dnsPort: 5_3\n', 'dnsPort: .inf\n', 'dnsPort: 1e400\n', 'logLevel: ~\n', 'logLevel: null\n', 'advertise: yes\n',
  '? [a, b]\n: c\n', '? {a: 1}\n: x\n', 'hostId: h1\nhostId: h2\n', '---\nhostId: h1\n---\nhostId: h2\n', '--- !!set\n? a\n', '- a\n- b\n', '"just a string"', '42', '',
  '%YAML 1.1\n---\nadvertise: 10.0.0.1\n', '%TAG ! tag:x,2000:\n---\nhostId: !a h\n', 'stateDir: |\n  /var/lib\n  x\n', 'stateDir: >-\n  /var\n  /lib\n',
  '{"hostId": "h1", "hostId": "h2"}', '{"__proto__": {"logLevel": "debug"}}', '{"dnsPort": 53.0}', '{"dnsPort": 1e2}', '\ufeffhostId: h1\n', 'hostId: "\\ud800"\n', 'hostId: "\\0"\n',
  `hostId: ${'x'.repeat(5000)}\n`, `${'['.repeat(2000)}${']'.repeat(2000)}\n`, `${'- '.repeat(500)}x\n`,
];

function fileText(rng: Rng): Buffer {
  const doc = layerValues(rng);
  const r = rng.next();
  if (r < 0.25) return Buffer.from(JSON.stringify(doc));
  if (r < 0.5) return Buffer.from(toYaml(doc));
  if (r < 0.7) return Buffer.from(rng.pick(YAML_SNIPPETS));
  if (r < 0.9) return Buffer.from(mutateText(rng, rng.chance(0.5) ? toYaml(doc) : rng.pick(YAML_SNIPPETS)));
  return mutateBytes(rng, Buffer.from(toYaml(doc)));
}

const DOMAIN = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/;
const goodPath = (p: unknown) => typeof p === 'string' && p.startsWith('/') && !p.includes('\0');
const goodPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;

function checkConfig(c: DaemonConfig): void {
  const bad = (key: string) => violated(`accepted a bad ${key}: ${show(c[key as keyof DaemonConfig])}`);
  if (!/^(sqlite:\/\/\/|etcds?:\/\/)/.test(c.store)) bad('store');
  if (!goodPath(c.stateDir)) bad('stateDir');
  if (!goodPath(c.pluginDir)) bad('pluginDir');
  if (!goodPath(c.socket)) bad('socket');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(c.hostId)) bad('hostId');
  if (c.advertise !== undefined && !isIP(c.advertise)) bad('advertise');
  if (c.metrics !== undefined && (!isIP(c.metrics.host) || !goodPort(c.metrics.port))) bad('metrics');
  if (!(LOG_LEVELS as readonly string[]).includes(c.logLevel)) bad('logLevel');
  if (!DOMAIN.test(c.dnsDomain) || c.dnsDomain.length > 253) bad('dnsDomain');
  if (!goodPort(c.dnsPort)) bad('dnsPort');
  if (c.dnsUpstream !== undefined && (c.dnsUpstream.length < 1 || c.dnsUpstream.length > 3 || !c.dnsUpstream.every((u) => isIP(u.host) && goodPort(u.port)))) bad('dnsUpstream');
  if (!/^(unix:\/\/\/|tcp:\/\/)/.test(c.dockerHost)) bad('dockerHost');
}

/** A refusal must be a ConfigError whose message names a config key or the file. */
function checkRefusal(err: unknown, layers: { source: string; values: RawConfig }[]): string {
  if (!(err instanceof ConfigError)) violated(`threw ${err instanceof Error ? err.stack : String(err)} instead of a ConfigError`);
  const named = CONFIG_KEYS.find((k) => err.message.includes(`${k}:`));
  if (named) return `refused ${named}`;
  if (/unknown key/.test(err.message)) return 'refused unknown key';
  if (/^config file /.test(err.message)) return 'refused file';
  return violated(`ConfigError names no key: ${err.message} (layers ${show(layers)})`);
}

test('fuzz: resolveConfig over file, environment and flag layers', async (t) => {
  await fuzz(t, settings(3000), {
    name: 'config-layers',
    file: FILE,
    generate(rng) {
      const layers: { source: string; values: RawConfig }[] = [];
      if (rng.chance(0.6)) layers.push({ source: 'config file /etc/tsoverlay.yaml', values: layerValues(rng) });
      if (rng.chance(0.4)) {
        const env: NodeJS.ProcessEnv = {};
        for (const [k, v] of Object.entries(layerValues(rng))) env[`TSOVERLAY_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`] = typeof v === 'string' ? v : JSON.stringify(v);
        layers.push({ source: 'environment', values: configFromEnv(env) });
      }
      layers.push({ source: 'flags', values: layerValues(rng) });
      return layers;
    },
    check(layers) {
      let cfg: DaemonConfig;
      try {
        cfg = resolveConfig(layers);
      } catch (err) {
        return checkRefusal(err, layers);
      }
      checkConfig(cfg);
      return 'accepted';
    },
  });
});

test('fuzz: config files through readConfigFile + resolveConfig', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fuzz-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'config.yaml');
  // The yaml library reports unknown tags, bad directives and collection keys through
  // process.emitWarning; 100k of them would flood AVA's worker output. Count them instead.
  const emitWarning = process.emitWarning;
  let warnings = 0;
  process.emitWarning = (() => void warnings++) as typeof process.emitWarning;
  t.teardown(() => {
    process.emitWarning = emitWarning;
  });
  await fuzz(t, settings(1500), {
    name: 'config-file',
    file: FILE,
    generate: fileText,
    describe: (b) => show(b.toString('utf8')),
    check(text) {
      writeFileSync(path, text);
      const started = performance.now();
      const layers: { source: string; values: RawConfig }[] = [];
      let out = 'accepted';
      let cfg: DaemonConfig | undefined;
      try {
        layers.push({ source: `config file ${path}`, values: readConfigFile(path) });
        cfg = resolveConfig(layers);
      } catch (err) {
        out = checkRefusal(err, layers);
      }
      if (cfg) checkConfig(cfg);
      const ms = performance.now() - started;
      if (ms > 2000) violated(`took ${ms.toFixed(0)} ms`);
      return out;
    },
  });
  t.log(`yaml warnings (not shown): ${warnings}`);
});

/** Store URLs as users type them into --store, the config file and CNI configs. */
function storeUrl(rng: Rng): string {
  const base = rng.pick([
    'sqlite:///var/lib/tsoverlay/store.db',
    'etcd://127.0.0.1:2379',
    'etcds://u:p%40ss@h1:2379,[fd00::1]:2379/pfx/sub?ca=/etc/ca.pem&timeoutMs=500',
    'etcd://h1:2379?cert=/c&key=/k&user=a&password=b',
  ]);
  return rng.chance(0.2) ? base : rng.chance(0.7) ? mutateText(rng, base, 3) : nastyString(rng);
}

/**
 * Whether `text` shows a password that `url` carries in a recognisable place: userinfo right
 * after the scheme, or a `password=` query parameter (mangled copies elsewhere do not count).
 */
function leaks(url: string, text: string): boolean {
  const once = (s: string, part: string) => s.split(part).length === 2;
  if (/^etcds?:\/\/u:p%40ss@/.test(url) && once(url, 'p%40ss') && text.includes('p%40ss')) return true;
  return /[?&]password=b(&|$)/.test(url) && once(url, 'password=b') && text.includes('password=b');
}

test('fuzz: store URLs (parseStoreUrl)', async (t) => {
  await fuzz(t, settings(3000), {
    name: 'store-url',
    file: FILE,
    generate: storeUrl,
    check(url) {
      let target: ReturnType<typeof parseStoreUrl>;
      try {
        target = parseStoreUrl(url);
      } catch (err) {
        if (!(err instanceof StoreError) || err.kind !== 'bad-request') violated(`threw ${err instanceof Error ? err.stack : String(err)}`);
        if (leaks(url, err.message)) violated(`message shows the password: ${err.message}`);
        return 'refused';
      }
      if (target.kind === 'sqlite') {
        if (!target.file.startsWith('/') || target.file.includes('\0') || target.file.split('/').includes('..')) violated(`sqlite file ${show(target.file)}`);
      } else {
        for (const e of target.config.endpoints) if (!/^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(e)) violated(`endpoint ${show(e)}`);
        if (leaks(url, target.description)) violated(`description shows the password: ${target.description}`);
      }
      return `accepted ${target.kind}`;
    },
  });
});
