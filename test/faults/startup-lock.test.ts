// Regression (found by crash-churn with TSO_FAULTS_STARTUP_RACE=1): nothing ordered the
// daemon's start-up reconcile against standalone CNI executables still running, so a starting
// daemon pruned the veth of an ADD in flight, or re-published a port a standalone DEL had just
// released. Now standalone calls hold the start-up lock (<state>/host.lock) shared for their
// whole verb and the daemon holds it exclusive until its socket answers: a call in flight
// delays the daemon, and a call arriving while it starts waits and is then handed to it. (The
// churn runs restarts beside plugin calls by default now: crash-churn.test.ts.)
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostStateError, HostStateLock, type HeldLock } from '../../plugins/cni/host-state.js';
import { startDaemon } from '../harness/daemon.js';
import { NetnsSet } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { FaultRuntime, type FaultConflist, type Invocation } from './fixtures/cni-runtime.js';

// The daemon logs "waiting" from the worker's callback: said earlier (before the worker took
// PENDING), a call arriving on that cue could still take the lock shared and run beside the
// start (a CI flake of the test below).
test('the off-thread exclusive taker says it waits only once new shared takers are held back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fzsul-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let said = 0;
  const free = await HostStateLock.acquireOffThread(dir, 'exclusive', 5_000, () => said++);
  t.is(said, 0, 'a free lock is taken without a wait');
  free.release();
  const inFlight = await HostStateLock.acquire(dir, 'shared', 5_000);
  let pending: Promise<HeldLock> | undefined;
  await new Promise<void>((resolve) => {
    pending = HostStateLock.acquireOffThread(dir, 'exclusive', 20_000, resolve);
  });
  await t.throwsAsync(HostStateLock.acquire(dir, 'shared', 300), { instanceOf: HostStateError }, 'a shared taker queues behind the waiter');
  inFlight.release();
  (await pending!).release();
  const after = await HostStateLock.acquire(dir, 'shared', 5_000);
  after.release();
  t.pass();
});

test('the daemon waits for a standalone call in flight; a call arriving while it starts is handed to it', async (t) => {
  t.timeout(240_000);
  const set = new NetnsSet('fzsul');
  t.teardown(() => set.cleanup());
  const host = await set.add('h');
  const c1 = await set.add('c1');
  const c2 = await set.add('c2');
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fzsul-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  const list: FaultConflist = {
    cniVersion: '1.0.0',
    name: 'fzsul',
    plugins: [{ type: 'tsbridge', bridge: 'tsfzsul0', isGateway: true, store: `sqlite://${join(stateDir, 'store.db')}`, daemonSocket: join(dir, 'run', 'tsoverlay.sock'), ipam: { type: 'tsipam', ranges: [[{ subnet: '10.73.0.0/24' }]] } }],
  };
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  const a1 = { containerId: 'fzsul1', netns: c1.path, ifname: 'eth0' };
  const a2 = { containerId: 'fzsul2', netns: c2.path, ifname: 'eth0' };

  // The daemon finds a standalone call in flight: the lock held shared, as every standalone
  // call holds it for its whole verb (the same class and mode), here for as long as the test wants.
  const inFlight = await HostStateLock.acquire(stateDir, 'shared', 10_000);
  let released = false;
  t.teardown(() => {
    if (!released) inFlight.release();
  });
  const d = await startDaemon({ dir, netnsPath: host.path, extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(async () => {
    for (const [a, r] of [[a2, add2], [a1, add1]] as const) if (r) await rt.del(list, a, (await r).json);
    await d.cleanup();
  });
  let add1: Promise<Invocation> | undefined;
  let add2: Promise<Invocation> | undefined;
  await d.waitForLog('start-up: waiting for standalone CNI calls to finish', 120_000);
  // A real ADD arriving now: no socket answers yet, so it waits for the lock the daemon is after.
  add2 = rt.add(list, a2);
  await sleep(3000);
  t.false(d.logs.some((l) => l.includes('"daemon ready"')), 'the daemon does not start beside the call in flight');
  inFlight.release();
  released = true;
  await d.waitForLog('daemon ready', 120_000);
  const r2 = await add2;
  t.is(r2.code, 0, r2.stdout + r2.stderr);
  // And one after the start: plainly handed off.
  add1 = rt.add(list, a1);
  const r1 = await add1;
  t.is(r1.code, 0, r1.stdout + r1.stderr);
  // The ADD that waited went to the daemon: it asked the socket again once it had the lock.
  const served = d.records().filter((r) => r.msg === 'cni request').map((r) => `${r.container} ${r.command} ${r.status}`);
  t.deepEqual(served, ['fzsul2 ADD 200', 'fzsul1 ADD 200']);
  // Nothing was pruned: both containers have their interface, with distinct addresses.
  t.regex(await c1.ip('-o', 'link', 'show'), /eth0/);
  t.regex(await c2.ip('-o', 'link', 'show'), /eth0/);
  const ip = (r: typeof r1) => (r.json as { ips: { address: string }[] }).ips[0]!.address;
  t.not(ip(r1), ip(r2));
});
