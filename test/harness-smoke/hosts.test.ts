// Hosts on one underlay reach each other, and two Docker engines run side by side
// (one per host) without meeting: own hostnames, own plugin dirs, same container names.
import test from 'ava';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { makeHosts } from '../harness/hosts.js';
import { NetnsSet } from '../harness/netns.js';

test('three hosts on an underlay; two engines side by side', async (t) => {
  t.timeout(90_000);
  const nets = new NetnsSet('ul');
  const engines: DockerEngine[] = [];
  t.teardown(async () => {
    await Promise.all(engines.map((e) => e.stop()));
    await nets.cleanup();
  });
  const hosts = await makeHosts(nets, 3, { prefix: '10.99.7' });
  t.deepEqual(hosts.map((h) => h.address), ['10.99.7.1', '10.99.7.2', '10.99.7.3']);
  await hosts[0]!.ns.exec('ping', ['-c', '1', '-W', '2', hosts[2]!.address]);

  engines.push(...(await Promise.all(hosts.slice(0, 2).map((h) => startDockerd({ netns: h.ns.path })))));
  const [a, b] = engines as [DockerEngine, DockerEngine];
  t.not(a.hostname, b.hostname);
  t.not(a.pluginDir, b.pluginDir);
  await Promise.all(engines.map((e) => e.importBusybox()));
  await Promise.all(engines.map((e) => e.docker(['run', '-d', '--name', 'same', 'busybox:local', 'sleep', '60'])));
  const names = await Promise.all(engines.map((e) => e.exec('same', ['hostname'])));
  t.is(names.length, 2);
  // Each engine's default bridge lives in its own host: both use 172.17.0.0/16 without clash.
  for (const h of hosts.slice(0, 2)) t.regex(await h.ns.ip('-4', '-o', 'addr', 'show', 'docker0'), /172\.17\.0\.1\/16/);
});
