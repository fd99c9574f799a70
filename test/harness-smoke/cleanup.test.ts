// The harness cleans up after failures: an engine that fails to start leaves nothing,
// a test process ended by SIGTERM cleans up on its way out, and one killed outright
// has its engine swept by the next start.
import test from 'ava';

// Serial: the sweep test kills engines whose owner looks dead, which could catch another
// test's engine while it is still being set up in this same file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDockerd } from '../harness/docker.js';
import { sweepStaleEngines } from '../harness/engine-sandbox.js';
import { HarnessError } from '../harness/harness-error.js';
import { NetnsSet } from '../harness/netns.js';
import { cgroupDirs, isAlive, namespaceMembers } from '../harness/proc.js';

const orphanFixture = fileURLToPath(new URL('./fixtures/orphan-sandbox.ts', import.meta.url));
const engineFixture = fileURLToPath(new URL('./fixtures/engine-then-wait.ts', import.meta.url));

/** Start a fixture process and resolve with the JSON of its first stdout line. */
async function startFixture<T>(args: string[]): Promise<{ child: ReturnType<typeof spawn>; info: T }> {
  const child = spawn(process.execPath, ['--import=tsx', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', () => reject(new Error(`fixture exited: ${out}`)));
  });
  return { child, info: JSON.parse(line) as T };
}

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

test.serial('a dockerd that fails to start leaves no process and no directory', async (t) => {
  t.timeout(60_000);
  const nets = new NetnsSet('df');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const dir = mkdtempSync('/tmp/tsot-dockerd-fail-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const err = await t.throwsAsync(startDockerd({ netns: host.path, dir, extraArgs: ['--no-such-flag'] }), { instanceOf: HarnessError });
  t.is((err as HarnessError).code, 'harness-dockerd-exited');
  t.regex(err!.message, /no-such-flag/, 'the error carries the daemon log');
  t.false(existsSync(dir));
  t.deepEqual(pidsMentioning(dir), []);
});

test.serial('an engine whose test process was killed is swept by the next start', async (t) => {
  t.timeout(60_000);
  const { child, info: orphan } = await startFixture<{ dir: string; holderPid: number; mntNs: string; childPid: number }>([orphanFixture]);
  t.teardown(() => child.kill('SIGKILL'));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.true(isAlive(orphan.holderPid) && isAlive(orphan.childPid), 'the orphan outlives its owner');
  // Any process's next engine start may sweep it first; the end state is what counts.
  await sweepStaleEngines();
  t.false(existsSync(orphan.dir));
  t.false(isAlive(orphan.holderPid) || isAlive(orphan.childPid));
  t.deepEqual(namespaceMembers(orphan.mntNs), []);
});

for (const kind of ['docker', 'podman']) {
  test.serial(`a ${kind} test process ended by SIGTERM (AVA's global timeout) cleans up on its way out`, async (t) => {
    t.timeout(60_000);
    const nets = new NetnsSet('dt');
    t.teardown(() => nets.cleanup());
    const host = await nets.add('h');
    const { child, info } = await startFixture<{ dir: string; mntNs: string; cgroup: string; containerPid: number }>([engineFixture, kind, host.path]);
    t.teardown(() => child.kill('SIGKILL'));
    t.true(isAlive(info.containerPid));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    t.is(await exited, 143);
    t.false(isAlive(info.containerPid), 'container ended');
    t.deepEqual(namespaceMembers(info.mntNs), []);
    t.deepEqual(cgroupDirs(info.cgroup), []);
    t.false(existsSync(info.dir));
  });
}
