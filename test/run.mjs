#!/usr/bin/env node
// Runs the AVA suite with TAP output passed through, then prints the plain
// closing line CI reads ("ava: N passed, N failed"), keeping AVA's exit status.
// Extra arguments go to AVA (e.g. a file pattern). Plain JS: runs before any build.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const avaCli = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const child = spawn(process.execPath, [avaCli, '--tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let passed = 0;
let failed = 0;
let skipped = 0;
let tail = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const lines = (tail + chunk).split('\n');
  tail = lines.pop() ?? '';
  for (const line of lines) count(line);
});
function count(line) {
  if (/^not ok \d+/.test(line)) failed++;
  else if (/^ok \d+.*# SKIP/i.test(line)) skipped++;
  else if (/^ok \d+/.test(line)) passed++;
}
/**
 * A safety net, not a substitute for each test's own cleanup: delete namespaces that
 * tests made (named tsot-<pid36>-…, see test/harness/netns.ts) whose creating process
 * is gone, and say so, so a leak is visible. Namespaces of live processes (another suite
 * running side by side) are left alone.
 */
function sweepNamespaces() {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const names = (r.stdout || '').split('\n').map((l) => l.split(' ')[0]);
  const left = names.filter((n) => {
    // A PID fits 5 base-36 digits (pid_max ≤ 4194304); anything else is not this scheme.
    const m = /^tsot-([0-9a-z]{1,5})-[0-9a-f]{6}-/.exec(n ?? '');
    return m !== null && !alive(parseInt(m[1], 36));
  });
  for (const name of left) spawnSync('ip', ['netns', 'delete', name]);
  if (left.length) process.stderr.write(`warning: tests left ${left.length} namespace(s) behind, deleted: ${left.join(' ')}\n`);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

child.on('close', (code, signal) => {
  if (tail) count(tail);
  sweepNamespaces();
  const status = code ?? (signal ? 1 : 0);
  // A run that failed outside any test (a crash, a timeout) must not read as green.
  if (status !== 0 && failed === 0) failed = 1;
  process.stdout.write(`\nava: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(status);
});
