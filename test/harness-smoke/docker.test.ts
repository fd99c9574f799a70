// Smoke test of the Docker harness: a real dockerd in a host namespace runs busybox
// containers on the built-in bridge, finds a plugin in the test's own plugin dir,
// and leaves nothing behind (processes, mounts, cgroups, files, root namespace state).
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackground, type BackgroundProcess } from '../harness/background.js';
import { containerIPv4, pingFromContainer } from '../harness/container.js';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { waitFor } from '../harness/engine-api.js';
import { NetnsSet } from '../harness/netns.js';
import { cgroupDirs, isAlive, mountsUnder, NamespacePin, namespaceMembers } from '../harness/proc.js';
import { rootSnapshot, type RootSnapshot } from '../harness/root-guard.js';

const fixture = fileURLToPath(new URL('./fixtures/mini-driver.mjs', import.meta.url));
const nets = new NetnsSet('dk');
let engine: DockerEngine | undefined;
let plugin: BackgroundProcess | undefined;
let pluginDir = '';
let before: RootSnapshot;

test.before(async () => {
  before = await rootSnapshot();
  const host = await nets.add('h');
  pluginDir = mkdtempSync('/tmp/tsot-plugins-');
  engine = await startDockerd({ netns: host.path, pluginDir });
  await engine.importBusybox();
});

test.after.always(async () => {
  await plugin?.stop();
  await engine?.stop();
  await nets.cleanup();
  if (pluginDir) rmSync(pluginDir, { recursive: true, force: true });
});

async function timeRuns(e: DockerEngine, args: string[], n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await e.docker(['run', '--rm', ...args, 'busybox:local', 'true']);
    ms.push(Math.round(performance.now() - t0));
  }
  return ms;
}

test.serial('runs busybox on the built-in bridge and with --net=none', async (t) => {
  t.timeout(90_000);
  const e = engine!;
  t.is((await e.docker(['info', '--format', '{{.Name}}'])).trim(), e.hostname, 'own UTS namespace');
  t.regex((await e.api<{ Version: string }>('/version')).Version, /^20\.10\./);
  const bridged = await e.docker(['run', '--rm', 'busybox:local', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(bridged, /inet 172\.17\.\d+\.\d+\/16/);
  const none = await e.docker(['run', '--rm', '--net=none', 'busybox:local', 'ip', '-o', 'link']);
  t.deepEqual(none.trim().split('\n').map((l) => l.split(':')[1]!.trim()), ['lo']);
  t.log(`docker run --rm true, built-in bridge (ms): ${(await timeRuns(e, [], 5)).join(' ')}`);
  t.log(`docker run --rm true, --net=none (ms): ${(await timeRuns(e, ['--net=none'], 3)).join(' ')}`);
});

test.serial('two containers on a user-defined bridge reach each other by name and address', async (t) => {
  t.timeout(90_000);
  const e = engine!;
  await e.docker(['network', 'create', '--subnet', '10.231.0.0/24', 'tsotnet']);
  for (const name of ['ca', 'cb']) await e.docker(['run', '-d', '--name', name, '--network', 'tsotnet', 'busybox:local', 'sleep', '120']);
  const ipB = await containerIPv4(e, 'cb');
  t.regex(ipB, /^10\.231\.0\.\d+$/);
  t.true(await pingFromContainer(e, 'ca', 'cb'), 'ca pings cb by name (engine DNS)');
  t.true(await pingFromContainer(e, 'cb', await containerIPv4(e, 'ca')), 'cb pings ca by address');
  await e.docker(['rm', '-f', 'ca', 'cb']);
  await e.docker(['network', 'rm', 'tsotnet']);
});

test.serial('dockerd finds plugins in the test plugin dir (socket and spec file), not machine-wide', async (t) => {
  t.timeout(90_000);
  const e = engine!;
  const bySocket = e.pluginSocket('tsot-mini');
  const bySpec = join(e.dir, 'mini2.sock'); // anywhere dockerd can see it
  e.writePluginSpec('tsot-mini2', `unix://${bySpec}`);
  // A driver must run in dockerd's network namespace: it creates links there.
  plugin = startBackground('node', [fixture, bySocket, bySpec], { netns: e.netns, logFile: join(pluginDir, 'mini.log') });
  await waitFor(() => existsSync(bySocket) && existsSync(bySpec), 10_000, () => new Error(`plugin did not listen:\n${plugin!.log()}`));
  await e.docker(['network', 'create', '-d', 'tsot-mini', 'minnet']);
  await e.docker(['network', 'create', '-d', 'tsot-mini2', 'minnet2']);
  t.regex(await e.docker(['network', 'ls', '--filter', 'driver=tsot-mini', '--format', '{{.Name}}']), /minnet/);
  await e.docker(['network', 'rm', 'minnet', 'minnet2']);
  const calls = plugin.log();
  t.is(calls.match(/CALL \/NetworkDriver\.CreateNetwork/g)?.length, 2, calls);
  t.is(calls.match(/CALL \/NetworkDriver\.DeleteNetwork/g)?.length, 2, calls);
  t.false(existsSync('/run/docker/plugins/tsot-mini.sock'));
  t.false(existsSync('/etc/docker/plugins/tsot-mini2.spec'));
  await plugin.stop();
});

test.serial('stop() leaves no process, mount, cgroup, file or root-namespace change', async (t) => {
  t.timeout(90_000);
  const e = engine!;
  await e.docker(['run', '-d', '--name', 'left-running', 'busybox:local', 'sleep', '300']);
  const containerPid = await e.containerPid('left-running');
  const { pid, mntNs, cgroup, dir } = e;
  // Held by the test, so "no member left" below cannot be about a later namespace given the same number.
  const pin = NamespacePin.of(e.holderPid, mntNs);
  t.truthy(pin, 'the engine namespace is pinned');
  t.teardown(() => pin?.release());
  t.true(isAlive(pid) && isAlive(containerPid));
  const t0 = performance.now();
  await e.stop();
  t.log(`stop with one running container: ${Math.round(performance.now() - t0)} ms`);
  t.false(isAlive(pid), 'dockerd ended');
  t.false(isAlive(containerPid), 'container ended');
  t.deepEqual(namespaceMembers(mntNs), [], 'no process left in the engine namespace');
  t.deepEqual(cgroupDirs(cgroup), [], 'cgroup tree removed');
  t.deepEqual(mountsUnder(dir), [], 'no mounts under its dir');
  t.false(existsSync(dir), 'dir removed');
  await nets.cleanup();
  t.deepEqual(await rootSnapshot(), before, 'root namespace links, firewall and sysctls unchanged');
});
