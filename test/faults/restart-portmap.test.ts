// Regression (found by crash-churn): a daemon restart must keep the ports CNI tsportmap
// published. The daemon's firewall is desired state in memory; at start it was rebuilt from
// bridge endpoints only, so its full reconcile removed every tsportmap DNAT rule (the records
// and host-port reservations stayed, the container was unreachable on its port).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from '../harness/daemon.js';
import { NetnsSet } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { FaultRuntime, type FaultConflist } from './fixtures/cni-runtime.js';

test('CNI tsportmap rules survive a daemon restart (SIGTERM and SIGKILL)', async (t) => {
  t.timeout(180_000);
  const set = new NetnsSet('fzpm');
  t.teardown(() => set.cleanup());
  const host = await set.add('h');
  const ctr = await set.add('c');
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fzpm-'));
  const opts = { dir, netnsPath: host.path, extraArgs: ['--reconcile-interval', '0'] };
  let d = await startDaemon(opts);
  t.teardown(async () => {
    await d.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  await d.waitForLog('daemon ready', 120_000);
  const list: FaultConflist = {
    cniVersion: '1.0.0',
    name: 'fzpm',
    plugins: [
      { type: 'tsbridge', bridge: 'tsfzpm0', isGateway: true, ipMasq: true, store: d.store, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.71.0.0/24' }]] } },
      { type: 'tsportmap', capabilities: { portMappings: true }, store: d.store, daemonSocket: d.socket },
    ],
  };
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  const a = { containerId: 'fzpm1', netns: ctr.path, ifname: 'eth0', runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } };
  const add = await rt.add(list, a);
  t.is(add.code, 0, add.stdout + add.stderr);
  t.teardown(async () => void (await rt.del(list, a, add.json)));
  const ip = add.json.ips[0].address.split('/')[0];
  const dnat = async () => (await host.exec('iptables-save', ['-t', 'nat'])).split('\n').filter((l) => l.includes(`--to-destination ${ip}:80`)).length;
  t.true((await dnat()) > 0, 'published');

  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    if (how === 'SIGTERM') await d.stop();
    else await d.kill();
    d = await startDaemon(opts);
    await d.waitForLog('daemon ready', 120_000);
    t.true((await dnat()) > 0, `the DNAT rule is still there after a ${how} and a restart`);
  }
  const del = await rt.del(list, a, add.json);
  t.is(del.code, 0, del.stdout + del.stderr);
  t.is(await dnat(), 0, 'DEL through the restarted daemon removes it');
});
