// The harness cleans up after failures: an engine that fails to start leaves nothing,
// and a test process killed outright has its engine swept by the next start.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '../harness/docker.js';
import { sweepStaleEngines } from '../harness/engine-sandbox.js';
import { HarnessError } from '../harness/harness-error.js';
import { NetnsSet } from '../harness/netns.js';
import { isAlive, namespaceMembers } from '../harness/proc.js';

const orphanFixture = fileURLToPath(new URL('./fixtures/orphan-sandbox.ts', import.meta.url));

/** Pids whose command line mentions `text`. */
function pidsMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

test('a dockerd that fails to start leaves no process and no directory', async (t) => {
  t.timeout(60_000);
  const nets = new NetnsSet('df');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const dir = mkdtempSync('/tmp/tsot-dockerd-fail-');
  const err = await t.throwsAsync(startDockerd({ netns: host.path, dir, extraArgs: ['--no-such-flag'] }), { instanceOf: HarnessError });
  t.is((err as HarnessError).code, 'harness-dockerd-exited');
  t.regex(err!.message, /no-such-flag/, 'the error carries the daemon log');
  t.false(existsSync(dir));
  t.deepEqual(pidsMentioning(dir), []);
});

test('an engine whose test process was killed is swept by the next start', async (t) => {
  t.timeout(60_000);
  const child = spawn(process.execPath, ['--import=tsx', orphanFixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', () => reject(new Error(`fixture exited: ${out}`)));
  });
  const orphan = JSON.parse(line) as { dir: string; holderPid: number; mntNs: string; childPid: number };
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.true(isAlive(orphan.holderPid) && isAlive(orphan.childPid), 'the orphan outlives its owner');
  const swept = await sweepStaleEngines();
  t.true(swept.includes(orphan.dir));
  t.false(existsSync(orphan.dir));
  t.false(isAlive(orphan.holderPid) || isAlive(orphan.childPid));
  t.deepEqual(namespaceMembers(orphan.mntNs), []);
});
