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
  /** When each spawned tool's process ended (performance.now()), in spawn order. */
  exits: number[];
  k: Kernel;
}

/** Two namespaces, a sleeper in the first (ended by PID at teardown), a Kernel watching it. */
async function world(t: ExecutionContext, tag: string, devicesFile?: string): Promise<World> {
  const nets = new NetnsSet(tag);
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const ctr = await nets.add('c');
  const sleeper = spawn('nsenter', [`--net=${host.path}`, '--', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => sleeper.once('spawn', resolve).once('error', reject));
  const watch = new LinkWatch({ netns: host.path, devicesFile: devicesFile ?? `/proc/${sleeper.pid}/net/dev` });
  // Until nsenter has entered the namespace, the sleeper's list is the root namespace's.
  for (let i = 0; !devicesFile && i < 200 && (await watch.names()).size !== 1; i++) await new Promise((r) => setTimeout(r, 5));
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
  return { host, ctr, watch, exits, k };
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
  for (let i = 0; i < 5; i++) {
    await pair(w, 'lwb0');
    const spawned = w.exits.length;
    const p = host.linkDel('lwb0', { missingOk: true, returnWhenGone: true });
    t.true(await p);
    const at = performance.now();
    t.is(await host.link('lwb0'), null);
    t.is(await ctr.link('eth0'), null);
    // The deleting process ends on its own (bounded by its timeout): wait for it.
    while (w.exits.length <= spawned) await new Promise((r) => setTimeout(r, 2));
    const lag = w.exits[spawned]! - at;
    lags.push(lag.toFixed(1));
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
