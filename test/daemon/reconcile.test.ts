// The daemon repairs what someone changed behind its back, within its reconcile period:
// a deleted bridge, a flushed chain of ours, ip_forward reset to 0.
import test from 'ava';
import { NetnsSet } from '../harness/netns.js';
import { startDaemon } from '../harness/daemon.js';
import { caller, pluginDir } from '../cni/harness.js';

async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not repaired within ${timeoutMs} ms: ${what}`);
}

test('a deleted bridge, a flushed chain and ip_forward=0 are repaired by the periodic pass', async (t) => {
  const nets = new NetnsSet('rec');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const ctr = await nets.add('c');
  const d = await startDaemon({ netnsPath: host.path, hostId: 'rec', extraArgs: ['--reconcile-interval', '1'] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready');

  const cni = caller(await pluginDir(t));
  const conf = {
    cniVersion: '1.0.0', name: 'recnet', type: 'tsbridge', bridge: 'tsrec0', isGateway: true, ipMasq: true,
    store: d.store, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.67.0.0/24' }]] },
  };
  const env = { containerId: 'recc1', netns: ctr.path, ifname: 'eth0', hostNetns: host.path };
  const add = await cni('tsbridge', 'ADD', conf, env);
  t.is(add.code, 0, add.stdout + add.stderr);
  t.teardown(async () => void (await cni('tsbridge', 'DEL', { ...conf, prevResult: add.json }, env)));
  const ping = () => ctr.tryExec('ping', ['-c', '1', '-W', '1', '10.67.0.1']).then((r) => r.code === 0);
  t.true(await ping());

  const masq = async () => (await host.exec('iptables-save', ['-t', 'nat'])).includes('-s 10.67.0.0/24');
  t.true(await masq());

  // Behind the daemon's back: the bridge goes (the container loses its gateway) …
  await host.ip('link', 'del', 'tsrec0');
  t.false(await ping());
  await eventually('bridge and gateway', ping);

  // … our masquerade chain is flushed …
  await host.exec('iptables', ['-t', 'nat', '-F', 'TSO-POSTROUTING']);
  t.false(await masq());
  await eventually('masquerade rule', masq);

  // … and forwarding is switched off.
  await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
  await eventually('ip_forward', async () => (await host.exec('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim() === '1');

  const repaired = d.logs.filter((l) => l.includes('reconcile repaired state'));
  t.true(repaired.length >= 2, d.logs.slice(-20).join('\n'));
});
