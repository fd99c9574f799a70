#!/usr/bin/env node
// Makes a checkout runnable: installs npm dependencies when missing or stale, builds
// dist/ when any source is newer than the last build, and with --test installs the
// Debian packages of test/debian-packages.txt that are missing. Plain JS with no
// dependencies, because it runs before `npm install` has ever happened.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = ['netlink', 'store', 'ipam', 'plugins', 'dns', 'proxy', 'daemon', 'bin'];
const wantTest = process.argv.includes('--test');

function say(msg) {
  process.stderr.write(`tsoverlay: ${msg}\n`);
}

function runOrDie(cmd, args, env = process.env) {
  say(`running ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    say(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Newest modification time of any file below dir (0 when dir is missing). */
function newest(dir) {
  let best = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    best = Math.max(best, e.isDirectory() ? newest(p) : mtime(p));
  }
  return best;
}

function ensureSystemPackages() {
  const list = readFileSync(join(root, 'test', 'debian-packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const missing = list.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    say(`missing Debian packages: ${missing.join(' ')} — run as root (sudo npm test) to install them`);
    process.exit(1);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  runOrDie('apt-get', ['update'], env);
  runOrDie('apt-get', ['install', '-y', '--no-install-recommends', ...missing], env);
}

function ensureNodeModules() {
  const installed = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(installed) && mtime(installed) >= mtime(lock) && mtime(installed) >= mtime(join(root, 'package.json'))) return;
  runOrDie('npm', existsSync(lock) ? ['ci'] : ['install']);
}

function ensureBuild() {
  const sources = Math.max(...SOURCE_DIRS.map((d) => newest(join(root, d))), mtime(join(root, 'tsconfig.json')));
  // tsc rewrites every output, so the newest file in dist/ dates the last build.
  if (newest(join(root, 'dist')) >= sources && existsSync(join(root, 'dist', 'bin', 'tsoverlay.js'))) return;
  runOrDie('npm', ['run', 'build']);
}

if (wantTest) ensureSystemPackages();
ensureNodeModules();
ensureBuild();
