#!/usr/bin/env node
// Makes a checkout runnable: installs the Debian packages the build needs (the "# build:"
// block of test/debian-packages.txt; with --test all of them) when missing, npm
// dependencies when missing or stale, and builds dist/ when any source is newer than the
// last build (or the CNI launcher is missing while a C compiler is there). Plain JS with no
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

/** The package lists of test/debian-packages.txt: all, and the "# build:" block. */
function packageLists() {
  const all = [];
  const build = [];
  let inBuild = false;
  for (const raw of readFileSync(join(root, 'test', 'debian-packages.txt'), 'utf8').split('\n')) {
    const l = raw.trim();
    if (l === '') inBuild = false;
    else if (l.startsWith('#')) inBuild = inBuild || /^#\s*build:/.test(l);
    else (inBuild ? build : all).push(l);
  }
  return { all: [...build, ...all], build };
}

/** Install the missing packages of `list` (as root), or say what is missing (`required`: exit 1). */
function ensureSystemPackages(list, required) {
  const missing = list.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    if (!required) return say(`missing Debian packages: ${missing.join(' ')} — the build skips the CNI launcher; run as root (sudo npm start) to install them`);
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
  if (newest(join(root, 'dist')) >= sources && existsSync(join(root, 'dist', 'bin', 'tsoverlay.js'))) {
    // Built before a C compiler was there: add the launcher alone.
    if (!existsSync(join(root, 'dist', 'bin', 'cni-launcher')) && spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0) {
      runOrDie(process.execPath, [join(root, 'bin', 'launcher', 'build.mjs')]);
    }
    return;
  }
  runOrDie('npm', ['run', 'build']);
}

const packages = packageLists();
ensureSystemPackages(wantTest ? packages.all : packages.build, wantTest);
ensureNodeModules();
ensureBuild();
