// tsoverlay with two real dockerd 20.10 engines in two host namespaces sharing a cluster store
// (an etcd with the v2 API on the underlay, in the "outside" namespace), so a global-scope network
// created on engine A is known to engine B under the same id. The plugins (tsoverlay + tsipam) are
// served from this test process into each engine's plugin directory and work in its namespace by
// path; the overlay's own store is the 3-member etcd on loopback (through each host's relay).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../../ipam/index.js';
import { DockerIpam } from '../../plugins/libnetwork/adapters/ipam.js';
import { DockerOverlayNetwork } from '../../plugins/libnetwork/adapters/overlay.js';
import { startPluginServer } from '../../plugins/libnetwork/server.js';
import { startBackground } from '../harness/background.js';
import { containerIPv4 } from '../harness/container.js';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { OUTSIDE, overlayWorld, until, type OverlayHost } from './world.js';

let cluster: EtcdCluster | undefined;
test.before(async () => {
  cluster = await startEtcdCluster({ members: 3 });
});
test.after.always(async () => {
  await cluster?.stop();
});

test('two engines: a tsoverlay network created on A carries containers of A and B', async (t) => {
  const w = await overlayWorld(t, cluster!, 2, 'ovk');
  const [a, b] = w.hosts as [OverlayHost, OverlayHost];
  for (const h of w.hosts) await w.startPlane(h);

  // The engines' cluster store: etcd (v2 API) in the outside namespace, reachable on the underlay.
  const dir = mkdtempSync(join(tmpdir(), 'tsot-ovk-etcd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kv = startBackground(
    '/usr/bin/etcd',
    ['--name=kv', `--data-dir=${join(dir, 'data')}`, `--listen-client-urls=http://${OUTSIDE}:2379`, `--advertise-client-urls=http://${OUTSIDE}:2379`,
      '--listen-peer-urls=http://127.0.0.1:2380', '--initial-advertise-peer-urls=http://127.0.0.1:2380', '--initial-cluster=kv=http://127.0.0.1:2380',
      '--enable-v2=true', '--log-level=warn', '--logger=zap'],
    { netns: w.outside.path, logFile: join(dir, 'etcd.log') },
  );
  t.teardown(() => kv.stop());
  t.true(await until(async () => (await w.outside.tryExec('etcdctl', ['--endpoints', `http://${OUTSIDE}:2379`, 'endpoint', 'health'])).code === 0, 15_000), kv.log());

  const engines: DockerEngine[] = [];
  t.teardown(async () => {
    for (const e of engines) await e.stop();
  });
  for (const h of [a, b]) {
    const e = await startDockerd({
      netns: h.ns.path,
      hostname: h.id,
      extraArgs: ['--bridge=none', `--cluster-store=etcd://${OUTSIDE}:2379`, `--cluster-advertise=${h.underlay.address}:2376`],
    });
    engines.push(e);
    const p = h.plane!;
    const server = await startPluginServer({
      pluginDir: e.pluginDir,
      drivers: { tsoverlay: new DockerOverlayNetwork({ driver: p.driver }) },
      ipam: { name: 'tsipam', backend: new DockerIpam({ ipam: new Ipam(p.store, { hostId: h.id }), hostId: h.id }) },
    });
    t.teardown(() => server.close());
    await e.importBusybox();
  }
  const [ea, eb] = engines as [DockerEngine, DockerEngine];
  await ea.docker(['network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsipam', '--subnet', '10.240.0.0/24', '-o', 'com.docker.network.driver.overlay.vxlanid_list=7000', 'blue']);
  t.true(await until(async () => (await eb.tryDocker(['network', 'inspect', 'blue'])).code === 0, 15_000), 'B sees the network through the cluster store');
  const id = (await ea.docker(['network', 'inspect', '-f', '{{.Id}}', 'blue'])).trim();
  t.is((await eb.docker(['network', 'inspect', '-f', '{{.Id}}', 'blue'])).trim(), id);
  t.like(await a.plane!.driver.network(id), { vni: 7000 });

  await ea.docker(['run', '-d', '--net', 'blue', '--name', 'ca', 'busybox:local', 'sleep', '300']);
  await eb.docker(['run', '-d', '--net', 'blue', '--name', 'cb', 'busybox:local', 'sleep', '300']);
  const ipA = await containerIPv4(ea, 'ca');
  const ipB = await containerIPv4(eb, 'cb');
  t.not(ipA, ipB);
  const pingB = async () => (await ea.tryDocker(['exec', 'ca', 'ping', '-c', '1', '-W', '1', ipB])).code === 0;
  t.true(await until(pingB, 10_000), `container on A reaches ${ipB} on B`);
  t.is((await eb.tryDocker(['exec', 'cb', 'ping', '-c', '1', '-W', '1', ipA])).code, 0);

  await eb.docker(['rm', '-f', 'cb']);
  await ea.docker(['rm', '-f', 'ca']);
  await ea.docker(['network', 'rm', 'blue']);
  t.is(await a.plane!.driver.network(id), undefined);
});
