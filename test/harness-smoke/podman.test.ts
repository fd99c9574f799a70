// Smoke test of the podman harness: podman with the reference bridge + host-local +
// portmap CNI plugins in a host namespace runs a busybox httpd that the host namespace
// reaches directly and through a published port; then nothing is left behind.
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { setupPodman, type PodmanHost } from '../harness/podman.js';
import { cgroupDirs, isAlive, mountsUnder, NamespacePin, namespaceMembers } from '../harness/proc.js';
import { rootSnapshot, type RootSnapshot } from '../harness/root-guard.js';

const nets = new NetnsSet('pd');
let host: Netns;
let pod: PodmanHost | undefined;
let before: RootSnapshot;
let cniCacheBefore: string[];

function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

const hostNetnsFiles = () => readdirSync('/run/netns').filter((n) => n.startsWith('netns-'));

test.before(async () => {
  before = await rootSnapshot();
  cniCacheBefore = listTree('/var/lib/cni');
  host = await nets.add('h');
  pod = await setupPodman({ netns: host.path, cniPluginDirs: ['/usr/lib/cni'] });
  pod.writeConflist('tnet', {
    cniVersion: '1.0.0',
    plugins: [
      {
        type: 'bridge',
        bridge: 'tsotbr0',
        isGateway: true,
        ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.232.0.0/24', gateway: '10.232.0.1' }]] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  });
});

test.after.always(async () => {
  await pod?.stop();
  await nets.cleanup();
});

async function timeRuns(p: PodmanHost, net: string, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await p.podman(['run', '--rm', '--network', net, '--rootfs', p.rootfs, 'true']);
    ms.push(Math.round(performance.now() - t0));
  }
  return ms;
}

test.serial('a container on a reference bridge conflist answers ping and a published port', async (t) => {
  t.timeout(90_000);
  const p = pod!;
  t.regex(await p.podman(['network', 'ls', '--format', '{{.Name}}']), /^tnet$/m);
  await p.podman(['run', '-d', '--name', 'web', '--network', 'tnet', '-p', '8081:80', '--rootfs', p.rootfs, 'httpd', '-f', '-p', '80', '-h', '/etc']);
  const ip = await p.containerIP('web', 'tnet');
  t.regex(ip, /^10\.232\.0\.\d+$/);
  await host.exec('ping', ['-c', '1', '-W', '2', ip]);
  t.regex(await host.exec('curl', ['-sS', '-m', '5', `http://${ip}/passwd`]), /^root:x:0:0/);
  t.regex(await host.exec('curl', ['-sS', '-m', '5', 'http://10.232.0.1:8081/passwd']), /^root:x:0:0/, 'published port via host address');
  t.regex(await host.exec('curl', ['-sS', '-m', '5', 'http://127.0.0.1:8081/group']), /^root:x:0:/, 'published port via loopback');
  t.is((await p.podman(['rm', '-f', '-t', '0', 'web'])).trim(), 'web');
  t.is((await p.podman(['ps', '-aq'])).trim(), '');
  t.notRegex(await host.ip('-o', 'link', 'show', 'type', 'veth'), /veth/, 'CNI DEL removed the veth');
  t.log(`podman run --rm true, bridge conflist (ms): ${(await timeRuns(p, 'tnet', 5)).join(' ')}`);
  t.log(`podman run --rm true, --network none (ms): ${(await timeRuns(p, 'none', 3)).join(' ')}`);
});

test.serial('stop() leaves no process, mount, cgroup, netns file, CNI cache or root-namespace change', async (t) => {
  t.timeout(90_000);
  const p = pod!;
  await p.podman(['run', '-d', '--name', 'left-running', '--network', 'tnet', '--rootfs', p.rootfs, 'sleep', '300']);
  const containerPid = await p.containerPid('left-running');
  const { mntNs, cgroup, dir } = p;
  // Held by the test, so "no member left" below cannot be about a later namespace given the same number.
  const pin = NamespacePin.of(p.holderPid, mntNs);
  t.truthy(pin, 'the podman namespace is pinned');
  t.teardown(() => pin?.release());
  t.true(existsSync(`/sys/fs/cgroup/pids/${cgroup}`), 'containers run under the host cgroup');
  await p.stop();
  t.false(isAlive(containerPid), 'container ended');
  t.deepEqual(namespaceMembers(mntNs), [], 'no process (conmon…) left in the podman namespace');
  t.deepEqual(cgroupDirs(cgroup), [], 'cgroup tree removed');
  t.deepEqual(mountsUnder(dir), [], 'no mounts under its dir');
  t.false(existsSync(dir), 'dir removed');
  t.deepEqual(hostNetnsFiles(), [], 'no podman netns file in the machine /run/netns');
  t.deepEqual(listTree('/var/lib/cni'), cniCacheBefore, 'machine CNI cache untouched');
  await nets.cleanup();
  t.deepEqual(await rootSnapshot(), before, 'root namespace links, firewall and sysctls unchanged');
});
