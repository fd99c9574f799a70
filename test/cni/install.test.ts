// `installCni`: symlinks to the built executables (ESM through the real path), example
// conflists, refusal without a build; and, when dist/ is built and fresh, the installed
// executables answer VERSION.
import test from 'ava';
import { existsSync, statSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CNI_EXECUTABLES, installCni } from '../../plugins/cni/install.js';
import { tryRun } from '../harness/exec.js';
import { ROOT, tempDir } from './harness.js';

/** A package tree like the built one: "type": "module" and ESM-only bin files. */
async function fakeDist(dir: string): Promise<string> {
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'x', type: 'module' }));
  const dist = join(dir, 'dist');
  await mkdir(join(dist, 'bin'), { recursive: true });
  for (const name of CNI_EXECUTABLES) {
    // `import.meta` is a syntax error outside ESM: running it proves the package type applied.
    await writeFile(join(dist, 'bin', `${name}.js`), `#!/usr/bin/env node\nconsole.log(JSON.stringify({ name: ${JSON.stringify(name)}, esm: typeof import.meta.url }));\n`, { mode: 0o644 });
  }
  return dist;
}

test('installs five symlinks (made executable) and example conflists; running one runs it as ESM', async (t) => {
  const tmp = await tempDir(t, 'inst');
  const dist = await fakeDist(tmp);
  const bin = join(tmp, 'opt', 'cni', 'bin');
  const r = await installCni(bin, { distDir: dist, store: 'sqlite:///tmp/x.db' });
  t.deepEqual(r.plugins.map((p) => p.name), ['tsbridge', 'tsoverlay', 'tshost', 'tsipam', 'tsportmap']);
  for (const p of r.plugins) {
    t.true((await lstat(p.path)).isSymbolicLink());
    t.is(await readlink(p.path), join(dist, 'bin', `${p.name}.js`));
    t.is(statSync(p.target).mode & 0o111, 0o111, `${p.name} target is executable`);
  }
  const run = await tryRun(join(bin, 'tsipam'), [], { env: { PATH: process.env.PATH } });
  t.deepEqual(JSON.parse(run.stdout), { name: 'tsipam', esm: 'string' }, run.stderr);
  t.deepEqual((await readdir(join(tmp, 'opt', 'cni', 'net.d-examples'))).sort(), ['10-tsbridge.conflist', '20-tsoverlay.conflist', '30-tshost.conflist']);
  const ex = JSON.parse(await readFile(join(tmp, 'opt', 'cni', 'net.d-examples', '10-tsbridge.conflist'), 'utf8'));
  t.deepEqual(ex.plugins.map((p: { type: string }) => p.type), ['tsbridge', 'tsportmap']);
  t.is(ex.plugins[0].store, 'sqlite:///tmp/x.db');
  // Installing again replaces the links; --conf-dir elsewhere; no examples with confDir false.
  const again = await installCni(bin, { distDir: dist, confDir: join(tmp, 'conf') });
  t.is(again.examples.length, 3);
  t.true(existsSync(join(tmp, 'conf', '30-tshost.conflist')));
  t.deepEqual((await installCni(bin, { distDir: dist, confDir: false })).examples, []);
});

test('refuses without a build, naming what is missing', async (t) => {
  const tmp = await tempDir(t, 'inst');
  const dist = await fakeDist(tmp);
  await chmod(join(dist, 'bin', 'tshost.js'), 0o644);
  await writeFile(join(dist, 'bin', 'tshost.js'), '');
  await rm(join(dist, 'bin', 'tsportmap.js'));
  const err = await t.throwsAsync(installCni(join(tmp, 'bin'), { distDir: dist }));
  t.regex(err?.message ?? '', /tsportmap\.js.*npm run build/);
  t.false(existsSync(join(tmp, 'bin')), 'nothing written');
});

/** dist/ answers VERSION as the sources would: the entries and fast-entry.js exist and are newer than their sources. */
function freshDist(): boolean {
  const pairs: Array<[string, string]> = [
    ...CNI_EXECUTABLES.filter((n) => n !== 'tsoverlay').map((n): [string, string] => [`dist/bin/${n}.js`, `bin/${n}.ts`]),
    ['dist/plugins/cni/fast-entry.js', 'plugins/cni/fast-entry.ts'],
  ];
  return pairs.every(([out, src]) => existsSync(join(ROOT, out)) && statSync(join(ROOT, out)).mtimeMs >= statSync(join(ROOT, src)).mtimeMs);
}

const built = freshDist();

(built ? test : test.skip)('the installed executables of a fresh build answer VERSION', async (t) => {
  const tmp = await tempDir(t, 'inst');
  const { plugins } = await installCni(join(tmp, 'bin'), { distDir: join(ROOT, 'dist'), confDir: false });
  for (const p of plugins.filter((x) => x.name !== 'tsoverlay')) {
    const r = await tryRun(p.path, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' });
    t.deepEqual(JSON.parse(r.stdout), { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] }, `${p.name}: ${r.stderr}`);
  }
});
