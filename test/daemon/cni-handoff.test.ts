// A CNI executable hands its invocation to the running daemon (POST /v1/cni): the daemon
// does the work in its own namespace with its own store, and the container gets its network.
import test from 'ava';
import { NetnsSet } from '../harness/netns.js';
import { startDaemon } from '../harness/daemon.js';
import { caller, pluginDir } from '../cni/harness.js';
import { openStore } from '../../store/open.js';
import { Ipam } from '../../ipam/index.js';

test('tsbridge + tsipam ADD/CHECK/DEL are served by the daemon; the container pings its gateway', async (t) => {
  const nets = new NetnsSet('hoff');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const ctr = await nets.add('c');
  const d = await startDaemon({ netnsPath: host.path, hostId: 'hoff' });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready');

  const cni = caller(await pluginDir(t));
  const conf = {
    cniVersion: '1.0.0',
    name: 'hoffnet',
    type: 'tsbridge',
    bridge: 'tshoff0',
    isGateway: true,
    ipMasq: false,
    store: d.store,
    daemonSocket: d.socket,
    ipam: { type: 'tsipam', ranges: [[{ subnet: '10.66.0.0/24' }]] },
  };
  const env = { containerId: 'hoffc1', netns: ctr.path, ifname: 'eth0', hostNetns: host.path, args: 'IgnoreUnknown=1;K8S_POD_NAME=web1' };
  const add = await cni('tsbridge', 'ADD', conf, env);
  t.is(add.code, 0, add.stdout + add.stderr);
  const ip = add.json.ips[0].address as string;
  t.regex(ip, /^10\.66\.0\.\d+\/24$/);
  await d.waitForLog((/cni request/));
  const served = d.logs.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).filter((r) => r.msg === 'cni request');
  t.true(served.some((r) => r.plugin === 'tsbridge' && r.command === 'ADD' && r.status === 200));

  // The container's interface is real: it reaches the gateway on the host's bridge.
  await ctr.exec('ping', ['-c', '1', '-W', '2', '10.66.0.1']);

  // The daemon's DNS answers the pod's name on the gateway, and the result points there.
  t.deepEqual(add.json.dns?.nameservers, ['10.66.0.1']);
  let answer = '';
  for (let i = 0; i < 20 && answer === ''; i++) {
    const r = await ctr.tryExec('dig', ['+short', '+time=1', '+tries=1', '@10.66.0.1', 'web1.hoffnet.tsoverlay.']);
    answer = r.stdout.trim();
    if (answer === '') await new Promise((res) => setTimeout(res, 250));
  }
  t.is(answer, ip.split('/')[0]);

  const check = await cni('tsbridge', 'CHECK', { ...conf, prevResult: add.json }, env);
  t.is(check.code, 0, check.stdout + check.stderr);

  const del = await cni('tsbridge', 'DEL', { ...conf, prevResult: add.json }, env);
  t.is(del.code, 0, del.stdout + del.stderr);
  const links = await ctr.ip('-o', 'link', 'show');
  t.false(links.includes('eth0'));
  // The address is free again.
  const store = await openStore(d.store);
  t.teardown(() => store.close());
  t.deepEqual((await new Ipam(store, { hostId: 'reader' }).listAllocations()).filter((a) => a.kind === 'endpoint'), []);
  // A second DEL is success too (idempotent).
  t.is((await cni('tsbridge', 'DEL', { ...conf, prevResult: add.json }, env)).code, 0);
});
