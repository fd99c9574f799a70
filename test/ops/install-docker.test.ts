// `tsoverlay install docker`: the unit, the four plugin spec files and the README land in DIR,
// nothing outside it, and a symlink inside DIR is never followed.
import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installDocker } from '../../daemon/commands/install-docker.js';
import { run } from '../harness/exec.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tso-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const listAll = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

test('writes the unit, four spec files and a README into DIR only', (t) => {
  const root = tmp(t);
  const dir = join(root, 'out');
  const { files } = installDocker({ dir, pluginDir: '/run/tsoverlay/plugins', socket: '/run/tsoverlay/api.sock', execPath: '/opt/tsoverlay/bin/tsoverlay' });
  t.deepEqual(listAll(root), ['out', 'out/README.md', 'out/plugins', 'out/plugins/tsbridge.spec', 'out/plugins/tshost.spec', 'out/plugins/tsipam.spec', 'out/plugins/tsoverlay.spec', 'out/tsoverlay.service']);
  t.is(files.length, 6);
  for (const name of ['tsbridge', 'tsoverlay', 'tshost', 'tsipam']) {
    t.is(readFileSync(join(dir, 'plugins', `${name}.spec`), 'utf8'), `unix:///run/tsoverlay/plugins/${name}.sock\n`);
  }
  const unit = readFileSync(join(dir, 'tsoverlay.service'), 'utf8');
  t.regex(unit, /^ExecStart=\/opt\/tsoverlay\/bin\/tsoverlay daemon --state-dir \/var\/lib\/tsoverlay --plugin-dir \/run\/tsoverlay\/plugins --socket \/run\/tsoverlay\/api\.sock$/m);
  t.regex(unit, /^Before=docker\.service$/m);
  t.regex(unit, /^WantedBy=multi-user\.target$/m);
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  t.regex(readme, /install the spec files/);
  t.regex(readme, /\/etc\/docker\/plugins\/tsipam\.spec/);
});

test('the unit is one systemd accepts', async (t) => {
  const dir = tmp(t);
  installDocker({ dir, execPath: '/bin/true' });
  // systemd-analyze may be missing on minimal machines: then this check has nothing to run.
  const r = await run('systemd-analyze', ['verify', '--man=no', join(dir, 'tsoverlay.service')]).then(
    () => 'ok',
    (err: Error) => err.message,
  ).catch(() => 'missing');
  if (/ENOENT|not found/.test(r)) return t.pass('systemd-analyze not installed');
  t.notRegex(r, /tsoverlay\.service:\d+:/, r);
});

test('defaults, re-running, and refusing symlinks and bad paths', (t) => {
  const root = tmp(t);
  const dir = join(root, 'out');
  installDocker({ dir });
  t.is(readFileSync(join(dir, 'plugins', 'tsbridge.spec'), 'utf8'), 'unix:///run/docker/plugins/tsbridge.sock\n');
  t.regex(readFileSync(join(dir, 'tsoverlay.service'), 'utf8'), /^ExecStart=\/usr\/local\/bin\/tsoverlay daemon .*--plugin-dir \/run\/docker\/plugins /m);
  t.regex(readFileSync(join(dir, 'README.md'), 'utf8'), /spec files are optional/);

  // A symlink planted at a target is replaced, its target left alone.
  const outside = join(root, 'victim');
  writeFileSync(outside, 'keep');
  rmSync(join(dir, 'README.md'));
  symlinkSync(outside, join(dir, 'README.md'));
  installDocker({ dir });
  t.is(readFileSync(outside, 'utf8'), 'keep');
  t.regex(readFileSync(join(dir, 'README.md'), 'utf8'), /^# tsoverlay with Docker/);

  // A plugins/ symlinked elsewhere is refused.
  const other = join(root, 'other');
  mkdirSync(other);
  const dir2 = join(root, 'out2');
  mkdirSync(dir2);
  symlinkSync(other, join(dir2, 'plugins'));
  t.throws(() => installDocker({ dir: dir2 }), { message: /not a directory \(a symlink\?\)/ });
  t.deepEqual(readdirSync(other), []);

  t.throws(() => installDocker({ dir, pluginDir: 'relative/plugins' }), { message: /pluginDir: expected an absolute path/ });
  t.throws(() => installDocker({ dir, execPath: '/usr/bin/ts overlay' }), { message: /execPath/ });
  t.throws(() => installDocker({ dir, socket: '/run/../etc/x.sock' }), { message: /socket/ });
  t.throws(() => installDocker({ dir, store: 'sqlite:///x y.db' }), { message: /store/ });
});
