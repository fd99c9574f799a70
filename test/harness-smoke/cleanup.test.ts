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
import { EngineSandbox, sweepStaleEngines } from '../harness/engine-sandbox.js';
import { HarnessError } from '../harness/harness-error.js';
import { NetnsSet, uniqueId } from '../harness/netns.js';
import { cgroupDirs, isAlive, killNamespace, mountNsOf, NamespacePin, namespaceMembers } from '../harness/proc.js';

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
  // Held by the test, so "no member left" below cannot be about a later namespace with the same number.
  const pin = NamespacePin.of(orphan.holderPid, orphan.mntNs);
  t.truthy(pin, 'the orphan namespace is pinned');
  t.teardown(() => pin?.release());
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.true(isAlive(orphan.holderPid) && isAlive(orphan.childPid), 'the orphan outlives its owner');
  // Any process's next engine start may sweep it first; the end state is what counts.
  await sweepStaleEngines();
  t.false(existsSync(orphan.dir));
  t.false(isAlive(orphan.holderPid) || isAlive(orphan.childPid));
  t.deepEqual(namespaceMembers(orphan.mntNs), []);
});

// The kernel gives a freed namespace number to the next namespace at once
// (`unshare --mount readlink /proc/self/ns/mnt` prints the same number every time), and
// containers make namespaces all the time: an engine's clean-up that went on killing
// "members of mnt:[N]" after its namespace was gone killed other tests' container inits
// (the "cannot start a container that has stopped" and set-key failures CI saw).
test.serial('a destroyed sandbox never touches a later namespace that was given its number', async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync('/tmp/tsot-reuse-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const box = await EngineSandbox.create({ dir, hostname: 'tsot-reuse', cgroup: `tsot-${uniqueId(4)}`, mounts: [] });
  const number = box.mntNs;
  await box.destroy();
  // Take namespaces, keeping each, until one gets the freed number (each takes the lowest free one).
  const held: ReturnType<typeof spawn>[] = [];
  t.teardown(() => held.forEach((c) => c.kill('SIGKILL')));
  let heir: ReturnType<typeof spawn> | undefined;
  for (let i = 0; i < 200 && !heir; i++) {
    const c = spawn('unshare', ['--mount', '--', 'sleep', '60'], { stdio: 'ignore' });
    held.push(c);
    let ns: string | undefined;
    for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((r) => setTimeout(r, 5))) {
      ns = c.pid ? mountNsOf(c.pid) : undefined;
      if (ns && ns !== mountNsOf(process.pid)) break;
    }
    if (ns === number) heir = c;
  }
  t.truthy(heir, `no new namespace got ${number} back within 200 tries`);
  await box.destroy();
  box.destroySync();
  t.true(isAlive(heir!.pid!), `the process now in ${number} survives a second destroy of the old sandbox`);
  const released = NamespacePin.of(process.pid)!;
  released.release();
  await t.throwsAsync(killNamespace(released), { message: /no longer pinned/ });
});

for (const kind of ['docker', 'podman']) {
  test.serial(`a ${kind} test process ended by SIGTERM (AVA's global timeout) cleans up on its way out`, async (t) => {
    t.timeout(60_000);
    const nets = new NetnsSet('dt');
    t.teardown(() => nets.cleanup());
    const host = await nets.add('h');
    const { child, info } = await startFixture<{ dir: string; mntNs: string; holderPid: number; cgroup: string; containerPid: number }>([engineFixture, kind, host.path]);
    t.teardown(() => child.kill('SIGKILL'));
    const pin = NamespacePin.of(info.holderPid, info.mntNs);
    t.truthy(pin, 'the engine namespace is pinned');
    t.teardown(() => pin?.release());
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
