// The CLI's install, doctor and dns commands, run as a user runs them.
import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli } from '../harness/daemon.js';
import { tryRun } from '../harness/exec.js';
import { openStore } from '../../store/open.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';

function collect(child: ReturnType<typeof spawnCli>) {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tso-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('install docker writes spec files naming the plugin sockets, and a unit, only inside --dir', async (t) => {
  const dir = tempDir(t);
  const r = await collect(spawnCli(['install', 'docker', '--dir', join(dir, 'out'), '--plugin-dir', '/run/docker/plugins']));
  t.is(r.code, 0, r.stderr);
  const files = r.stdout.trim().split('\n');
  t.true(files.length >= 5);
  for (const f of files) t.true(f.startsWith(join(dir, 'out')), f);
  const all = readdirSync(join(dir, 'out'), { recursive: true }).map(String);
  t.true(all.some((f) => f.endsWith('tsbridge.spec')));
  const spec = readFileSync(files.find((f) => f.endsWith('tsipam.spec'))!, 'utf8');
  t.is(spec.trim(), 'unix:///run/docker/plugins/tsipam.sock');
});

test('install docker refuses a relative plugin dir with a one-line message', async (t) => {
  const dir = tempDir(t);
  const r = await collect(spawnCli(['install', 'docker', '--dir', dir, '--plugin-dir', 'plugins']));
  t.is(r.code, 1);
  t.regex(r.stderr, /^tsoverlay: .*pluginDir/);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('doctor --json answers with a check list whose failures carry a fix', async (t) => {
  const dir = tempDir(t);
  const url = `sqlite://${join(dir, 'store.db')}`;
  // Without a store the check fails and says how to make one; with one it passes.
  const before = JSON.parse((await collect(spawnCli(['doctor', '--json', '--store', url]))).stdout);
  const missing = before.checks.find((c: { name: string }) => c.name === 'store');
  t.false(missing.ok);
  t.regex(missing.fix, /^tsoverlay daemon --store sqlite:/);
  await (await openStore(url)).close();
  const r = await collect(spawnCli(['doctor', '--json', '--store', url]));
  t.true(r.code === 0 || r.code === 1, r.stderr);
  const { checks } = JSON.parse(r.stdout);
  t.true(checks.length >= 5);
  for (const c of checks) {
    t.is(typeof c.name, 'string');
    t.is(typeof c.ok, 'boolean');
    if (!c.ok) t.truthy(c.fix, `${c.name} failed without a fix`);
  }
  t.like(checks.find((c: { name: string }) => c.name === 'store'), { ok: true });
});

test('dns serve answers names from the store to dig, and stops on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const url = `sqlite://${join(dir, 'store.db')}`;
  const store = await openStore(url);
  const recs = new RecordStore(store);
  const now = new Date().toISOString();
  await recs.createNetwork({ id: 'n1', name: 'web', driver: 'bridge', scope: 'local', hostId: 'h1', subnets: ['10.88.0.0/24'], gateways: ['10.88.0.1'], internal: false, icc: true, masquerade: true, ipv6: false, options: {}, createdAt: now });
  await recs.createEndpoint({ id: 'e1', networkId: 'n1', hostId: 'h1', driver: 'bridge', names: ['app'], aliases: [], addresses: ['10.88.0.7/24'], ports: [], exposed: [], createdAt: now });
  await store.close();

  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawnCli(['dns', 'serve', '--store', url, '--listen', `127.0.0.1:${port}`]);
  const done = collect(child);
  t.teardown(() => child.kill('SIGKILL'));
  let answer = '';
  for (let i = 0; i < 50 && !answer; i++) {
    const r = await tryRun('dig', ['+short', '+time=1', '+tries=1', '-p', String(port), '@127.0.0.1', 'app.web.tsoverlay.']);
    answer = r.code === 0 ? r.stdout.trim() : '';
    if (!answer) await new Promise((res) => setTimeout(res, 200));
  }
  t.is(answer, '10.88.0.7');
  child.kill('SIGTERM');
  t.is((await done).code, 0);
});
