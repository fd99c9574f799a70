// Regression (found by crash-churn): CNI executables that ran standalone recorded their work
// under the host name, whatever the daemon's --host-id, so a daemon with another id pruned
// their bridge and veths at start-up (the container lost its interface). Now the daemon records
// its id in the directory it shares with the executables (its SQLite store's, `host-id`), they
// record under it, and a daemon whose --host-id differs from the recorded one refuses to start
// instead of pruning what was made under the other id.
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { defaultHostId } from '../../plugins/cni/host-state.js';
import { openStore } from '../../store/open.js';
import { startDaemon } from '../harness/daemon.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { FaultRuntime, type FaultConflist } from './fixtures/cni-runtime.js';

interface World {
  dir: string;
  host: Netns;
  ctr: Netns;
  list: FaultConflist;
  rt: FaultRuntime;
  attachment: { containerId: string; netns: string; ifname: string };
}

async function world(t: ExecutionContext, tag: string): Promise<World> {
  const set = new NetnsSet(tag);
  t.teardown(() => set.cleanup());
  const host = await set.add('h');
  const ctr = await set.add('c');
  const dir = mkdtempSync(join(tmpdir(), `tsot-${tag}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = `sqlite://${join(dir, 'state', 'store.db')}`;
  const socket = join(dir, 'run', 'tsoverlay.sock');
  const list: FaultConflist = {
    cniVersion: '1.0.0',
    name: tag,
    plugins: [{ type: 'tsbridge', bridge: `ts${tag}0`, isGateway: true, store, daemonSocket: socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.72.0.0/24' }]] } }],
  };
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  return { dir, host, ctr, list, rt, attachment: { containerId: `${tag}1`, netns: ctr.path, ifname: 'eth0' } };
}

/** The ids of the CNI bridge networks recorded in the world's store. */
async function networkIds(w: World): Promise<string[]> {
  const store = await openStore(`sqlite://${join(w.dir, 'state', 'store.db')}`);
  try {
    return (await new RecordStore(store).listNetworks()).map((n) => n.id);
  } finally {
    await store.close();
  }
}

test('a container added standalone while the daemon (--host-id) is down keeps its interface when it starts again', async (t) => {
  t.timeout(180_000);
  const w = await world(t, 'fzhid');
  const first = await startDaemon({ dir: w.dir, netnsPath: w.host.path, hostId: 'node-a', extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(() => first.cleanup());
  await first.waitForLog('daemon ready', 120_000);
  t.is(readFileSync(join(w.dir, 'state', 'host-id'), 'utf8'), 'node-a\n', 'the daemon records its host id');
  await first.kill();
  // No daemon answers: the executable works standalone, under the recorded id.
  const add = await w.rt.add(w.list, w.attachment);
  t.is(add.code, 0, add.stdout + add.stderr);
  t.deepEqual(await networkIds(w), ['cni:node-a:fzhid']);
  const d = await startDaemon({ dir: w.dir, netnsPath: w.host.path, hostId: 'node-a', extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(async () => {
    await w.rt.del(w.list, w.attachment, add.json);
    await d.cleanup();
  });
  await d.waitForLog('daemon ready', 120_000);
  t.regex(await w.ctr.ip('-o', 'link', 'show'), /eth0/, 'the container still has its interface');
  t.regex(await w.host.ip('-o', 'link', 'show'), /tsfzhid0/, 'the bridge is still there');
  // DEL goes to the daemon now, which finds the records under its id and removes everything.
  const del = await w.rt.del(w.list, w.attachment, add.json);
  t.is(del.code, 0, del.stdout + del.stderr);
  t.notRegex(await w.ctr.ip('-o', 'link', 'show'), /eth0/);
});

test('a daemon whose --host-id differs from the one recorded by standalone executables refuses to start and prunes nothing', async (t) => {
  t.timeout(180_000);
  const w = await world(t, 'fzhie');
  // No daemon has run here: the first ADD records the host name as this host's id.
  const add = await w.rt.add(w.list, w.attachment);
  t.is(add.code, 0, add.stdout + add.stderr);
  t.is(readFileSync(join(w.dir, 'state', 'host-id'), 'utf8'), `${defaultHostId()}\n`);
  const other = await startDaemon({ dir: w.dir, netnsPath: w.host.path, hostId: 'node-a', extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(() => other.cleanup());
  const failed = await other.waitForLog('daemon failed to start', 120_000);
  t.is(failed.err, `--host-id "node-a" differs from the host id "${defaultHostId()}" recorded in ${join(w.dir, 'state', 'host-id')} (this host's containers and records were made under it): start with --host-id ${defaultHostId()}, or delete the file once nothing is recorded under "${defaultHostId()}"`);
  const code = other.child.exitCode ?? (await new Promise<number | null>((resolve) => other.child.once('exit', (c) => resolve(c))));
  t.is(code, 1);
  t.regex(await w.ctr.ip('-o', 'link', 'show'), /eth0/, 'the container still has its interface');
  // With the recorded id (the default) the daemon starts and keeps it too.
  const d = await startDaemon({ dir: w.dir, netnsPath: w.host.path, extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(async () => {
    await w.rt.del(w.list, w.attachment, add.json);
    await d.cleanup();
  });
  await d.waitForLog('daemon ready', 120_000);
  t.regex(await w.ctr.ip('-o', 'link', 'show'), /eth0/);
  t.regex(await w.host.ip('-o', 'link', 'show'), /tsfzhie0/);
});
