// LinkWatch and linkDel's returnWhenGone on a real kernel: the watch reads the device list of a
// test namespace through a sleeper process inside it (/proc/<pid>/net/dev); veth pairs span two.
import { spawn } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { Kernel, LinkWatch } from '../../netlink/index.js';
import { spawnCollect } from '../../netlink/runner.js';
import { codeOf } from './fixture.js';
import { NetnsSet, type Netns } from '../harness/netns.js';

interface World {
  host: Netns;
  ctr: Netns;
  watch: LinkWatch;
  ctrWatch: LinkWatch;
  /** When each spawned tool's process ended (performance.now()), in spawn order. */
  exits: number[];
  k: Kernel;
}

/** A LinkWatch on `ns` through a sleeper inside it (ended by PID at teardown). */
async function watchIn(t: ExecutionContext, ns: Netns, devicesFile?: string): Promise<LinkWatch> {
  const sleeper = spawn('nsenter', [`--net=${ns.path}`, '--', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => sleeper.once('spawn', resolve).once('error', reject));
  const watch = new LinkWatch({ netns: ns.path, devicesFile: devicesFile ?? `/proc/${sleeper.pid}/net/dev` });
  // Until nsenter has entered the namespace, the sleeper's list is the root namespace's.
  for (let i = 0; !devicesFile && i < 200 && (await watch.names()).size !== 1; i++) await new Promise((r) => setTimeout(r, 5));
  return watch;
}

/** Two namespaces, each watched; a Kernel whose linkDel watches the first. */
async function world(t: ExecutionContext, tag: string, devicesFile?: string): Promise<World> {
  const nets = new NetnsSet(tag);
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const ctr = await nets.add('c');
  const watch = await watchIn(t, host, devicesFile);
  const ctrWatch = await watchIn(t, ctr);
  const exits: number[] = [];
  const k = new Kernel({
    timeoutMs: 20_000,
    linkWatch: watch,
    spawn: async (argv, input, timeoutMs) => {
      const r = await spawnCollect(argv, input, timeoutMs);
      exits.push(performance.now());
      return r;
    },
  });
  return { host, ctr, watch, ctrWatch, exits, k };
}

async function pair(w: World, name: string): Promise<void> {
  await w.k.ns(w.host.path).batch((b) => b.linkAdd({ kind: 'veth', name, up: true, peer: { name: 'eth0', netns: w.ctr.path } }));
}

test('the watch lists the namespace and resolves a waiter once its link is deleted', async (t) => {
  const w = await world(t, 'lw1');
  t.deepEqual([...(await w.watch.names())], ['lo']);
  await pair(w, 'lwa0');
  t.true(await w.watch.has('lwa0'));
  const a = w.watch.whenGone('lwa0');
  const b = w.watch.whenGone('lo');
  b.cancel();
  let gone = false;
  void a.gone.then(() => (gone = true));
  await new Promise((r) => setTimeout(r, 20));
  t.false(gone, 'a present link is not reported gone');
  await w.host.ip('link', 'del', 'lwa0');
  await a.gone;
  t.is(w.watch.pending, 0);
});

test('linkDel returnWhenGone: both ends gone when it resolves, before the ip process has ended; missing = false; errors keep codes', async (t) => {
  const w = await world(t, 'lw2');
  const host = w.k.ns(w.host.path);
  const ctr = w.k.ns(w.ctr.path);
  let early = 0;
  const lags: string[] = [];
  // Up to 10 rounds (a loaded machine can delay the watch's reads past the exit once or twice).
  for (let i = 0; i < 10 && !(i >= 3 && early > 0); i++) {
    await pair(w, 'lwb0');
    const spawned = w.exits.length;
    t.true(await host.linkDel('lwb0', { missingOk: true, returnWhenGone: true }));
    const at = performance.now();
    // Read in-process (no spawn that would hold up the exit event being timed).
    t.false(await w.watch.has('lwb0'));
    t.false(await w.ctrWatch.has('eth0'));
    // The deleting process ends on its own (bounded by its timeout): wait for it.
    while (w.exits.length <= spawned) await new Promise((r) => setTimeout(r, 1));
    const lag = w.exits[spawned]! - at;
    lags.push(lag.toFixed(1));
    t.is(await host.link('lwb0'), null);
    t.is(await ctr.link('eth0'), null);
    if (lag > 0) early++;
  }
  t.log(`ip exited this many ms after linkDel resolved: ${lags.join(', ')}`);
  t.true(early > 0, 'the kernel RCU wait is not waited for');
  t.false(await host.linkDel('lwb0', { missingOk: true, returnWhenGone: true }));
  t.is(await codeOf(t, host.linkDel('lwb0', { returnWhenGone: true })), 'ENODEV');
  t.is(await codeOf(t, host.linkDel('bad name', { missingOk: true, returnWhenGone: true })), 'EINVAL');
  // lo cannot be deleted: the refusal comes from the process, the watch never sees it go.
  t.not(await codeOf(t, host.linkDel('lo', { missingOk: true, returnWhenGone: true })), 'none');
  t.is(w.watch.pending, 0);
});

test('concurrent deletions share one watch; an unreadable list falls back to the process exit', async (t) => {
  const w = await world(t, 'lw3');
  const host = w.k.ns(w.host.path);
  const names = Array.from({ length: 12 }, (_, i) => `lwc${i}`);
  await host.batch((b) => names.forEach((n) => b.linkAdd({ kind: 'veth', name: n, peer: { name: `${n}p` } })));
  t.deepEqual(await Promise.all(names.map((n) => host.linkDel(n, { missingOk: true, returnWhenGone: true }))), names.map(() => true));
  t.deepEqual([...(await w.watch.names())], ['lo']);

  const blind = await world(t, 'lw4', '/nonexistent/net/dev');
  await pair(blind, 'lwd0');
  t.true(await blind.k.ns(blind.host.path).linkDel('lwd0', { missingOk: true, returnWhenGone: true }));
  t.is(await blind.k.ns(blind.host.path).link('lwd0'), null);
});
