// Delegation against the real reference IPAM plugin (/usr/lib/cni/host-local), plus
// the refusals (path-like types, missing plugin) and a delegate that never answers.
import test from 'ava';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { delegate, delegateEnv, findPlugin } from '../../plugins/cni/delegate.js';
import { parseEnv, type CniEnv } from '../../plugins/cni/env.js';
import { CniError } from '../../plugins/cni/errors.js';

const HOST_LOCAL = '/usr/lib/cni/host-local';
const hasHostLocal = existsSync(HOST_LOCAL);
const cniPath = '/nonexistent-tsot:/usr/lib/cni';

function envFor(command: string, containerId: string, extra: Record<string, string> = {}): CniEnv {
  return parseEnv({ CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: '/run/netns/tsot-none', CNI_IFNAME: 'eth0', CNI_PATH: cniPath, ...extra });
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-cni-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function conf(version: string, dataDir: string, subnet: string) {
  return { cniVersion: version, name: 'tsot-dlg', type: 'tsbridge', bridge: 'ignored', ipam: { type: 'host-local', subnet, dataDir } };
}

const it = hasHostLocal ? test : test.skip;

it('ADD and DEL through the real host-local, for 0.4.0 and 1.0.0 configs', async (t) => {
  const dataDir = await tempDir(t);
  for (const [i, version] of ['0.4.0', '1.0.0'].entries()) {
    const c = conf(version, dataDir, `10.199.${i}.0/29`);
    const id = `c${i}`;
    const r = await delegate({ type: 'host-local', command: 'ADD', stdin: JSON.stringify(c), env: envFor('ADD', id), cniVersion: version });
    t.deepEqual(r, { ips: [{ address: `10.199.${i}.2/29`, gateway: `10.199.${i}.1` }] }, version);
    const owner = await readFile(join(dataDir, 'tsot-dlg', `10.199.${i}.2`), 'utf8');
    t.true(owner.startsWith(id), owner);
    t.is(await delegate({ type: 'host-local', command: 'DEL', stdin: c, env: envFor('DEL', id), cniVersion: version }), undefined);
    t.false((await readdir(join(dataDir, 'tsot-dlg'))).includes(`10.199.${i}.2`));
    // DEL is idempotent.
    await t.notThrowsAsync(delegate({ type: 'host-local', command: 'DEL', stdin: c, env: envFor('DEL', id), cniVersion: version }));
  }
});

it("a delegate's error is propagated with its own code and message", async (t) => {
  const dataDir = await tempDir(t);
  const bad = await t.throwsAsync(
    delegate({ type: 'host-local', command: 'ADD', stdin: conf('1.0.0', dataDir, 'bogus'), env: envFor('ADD', 'c1'), cniVersion: '1.0.0' }),
    { instanceOf: CniError },
  );
  t.is(bad?.code, 999);
  t.is(bad?.msg, 'invalid CIDR address: bogus');
  // A /30 has one usable address besides the gateway: the second ADD is refused.
  const small = conf('1.0.0', dataDir, '10.199.9.0/30');
  await delegate({ type: 'host-local', command: 'ADD', stdin: small, env: envFor('ADD', 'c1'), cniVersion: '1.0.0' });
  const full = await t.throwsAsync(delegate({ type: 'host-local', command: 'ADD', stdin: small, env: envFor('ADD', 'c2'), cniVersion: '1.0.0' }), { instanceOf: CniError });
  t.regex(full?.msg ?? '', /no IP addresses available/);
});

test('a type that is a path, or is missing, is refused before anything runs', async (t) => {
  for (const type of ['../x', '../../usr/bin/id', 'a/b', '..', 'x..y', '/usr/lib/cni/host-local', '']) {
    const err = await t.throwsAsync(delegate({ type, command: 'ADD', stdin: '{}', env: envFor('ADD', 'c1'), cniVersion: '1.0.0' }), { instanceOf: CniError });
    t.is(err?.code, 7, type);
    t.regex(err?.msg ?? '', /ipam\.type/);
  }
  const missing = await t.throwsAsync(findPlugin('tsot-no-such-plugin', ['/usr/lib/cni']), { instanceOf: CniError });
  t.is(missing?.code, 7);
  t.regex(missing?.msg ?? '', /"tsot-no-such-plugin".*not found in CNI_PATH "\/usr\/lib\/cni"/);
  const noPath = await t.throwsAsync(findPlugin('host-local', []), { instanceOf: CniError });
  t.is(noPath?.code, 4);
});

test('a delegate that never answers is killed at the timeout (code 11); its stderr is forwarded', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'tsot-hang');
  await writeFile(file, `#!${process.execPath}\nprocess.stderr.write('hang: started\\n');\nsetTimeout(() => {}, 60000);\n`);
  await chmod(file, 0o755);
  let stderr = '';
  const started = Date.now();
  const err = await t.throwsAsync(
    delegate({ type: 'tsot-hang', command: 'ADD', stdin: '{}', env: envFor('ADD', 'c1', { CNI_PATH: dir }), cniVersion: '1.0.0', timeoutMs: 1500, stderr: { write: (s) => (stderr += String(s)) } }),
    { instanceOf: CniError },
  );
  t.is(err?.code, 11);
  t.true(Date.now() - started < 10_000);
  t.regex(stderr, /hang: started/);
});

test('a delegate exiting non-zero without an error object is a 999 naming the status', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'tsot-bad');
  await writeFile(file, `#!${process.execPath}\nprocess.stdout.write('garbage');\nprocess.exit(3);\n`);
  await chmod(file, 0o755);
  const err = await t.throwsAsync(delegate({ type: 'tsot-bad', command: 'DEL', stdin: '{}', env: envFor('DEL', 'c1', { CNI_PATH: dir }), cniVersion: '1.0.0' }), { instanceOf: CniError });
  t.is(err?.code, 999);
  t.regex(err?.msg ?? '', /"tsot-bad" exited with status 3/);
  t.is(err?.details, 'garbage');
});

test('the delegate gets our CNI variables with its own command', (t) => {
  const env = envFor('ADD', 'c9', { CNI_ARGS: 'IgnoreUnknown=1' });
  const out = delegateEnv(env, 'DEL', { PATH: '/bin', CNI_NETNS: '/stale' });
  t.like(out, { PATH: '/bin', CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c9', CNI_NETNS: '/run/netns/tsot-none', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: cniPath });
  const gc = delegateEnv(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' }), 'GC', { CNI_NETNS: '/stale' });
  t.false('CNI_NETNS' in gc);
});
