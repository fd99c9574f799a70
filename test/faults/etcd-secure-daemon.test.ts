// Security: the daemon on a secured etcd, end to end. Over TLS with a client certificate
// (etcds://…?ca=&cert=&key=) it registers its host and serves a CNI ADD whose records land in
// etcd; with user/password auth it registers too, and a wrong password stops it with one line
// that does not show the password. The daemon runs in a test namespace and reaches the
// members (on the root namespace's loopback) through the unix-socket relay.
import test from 'ava';
import { join } from 'node:path';
import { openStore } from '../../store/open.js';
import { keys } from '../../store/keys.js';
import { startDaemon } from '../harness/daemon.js';
import { startEtcdSingle } from '../harness/etcd.js';
import { run } from '../harness/exec.js';
import { pluginDir } from '../cni/harness.js';
import { FaultRuntime } from './fixtures/cni-runtime.js';
import { hostFor, patient } from './fixtures/etcd-relay.js';



async function hostRecord(url: string, hostId: string): Promise<Record<string, unknown> | undefined> {
  const s = await openStore(patient(url));
  try {
    const kv = await s.get(keys.host(hostId));
    return kv ? JSON.parse(kv.value) : undefined;
  } finally {
    await s.close();
  }
}

test('daemon on etcds:// with a client certificate registers its host and serves a CNI ADD', async (t) => {
  t.timeout(180_000);
  const cluster = await startEtcdSingle({ tls: true });
  t.teardown(() => cluster.stop());
  t.regex(cluster.url, /^etcds:\/\/127\.0\.0\.1:\d+\?ca=/);
  const { set, host, dir } = await hostFor(t, cluster, 'fztls');
  const d = await startDaemon({ dir: join(dir, 'd'), netnsPath: host.path, hostId: 'fz-tls', store: cluster.url, extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready', 120_000);
  t.like(await hostRecord(cluster.url, 'fz-tls'), { id: 'fz-tls' });
  t.false(d.logs.join('\n').includes('client.key'), 'no key path in the logs');

  const ctr = await set.add('c');
  const rt = new FaultRuntime(await pluginDir(t), host.path);
  const list = {
    cniVersion: '1.0.0',
    name: 'fztls',
    plugins: [{ type: 'tsbridge', bridge: 'tsfztls0', isGateway: true, store: cluster.url, daemonSocket: d.socket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.73.0.0/24' }]] } }],
  };
  const a = { containerId: 'fztls1', netns: ctr.path, ifname: 'eth0' };
  const add = await rt.add(list, a);
  t.is(add.code, 0, add.stdout + add.stderr);
  await ctr.exec('ping', ['-c', '1', '-W', '2', '10.73.0.1']);
  const s = await openStore(patient(cluster.url));
  t.teardown(() => s.close());
  t.is((await s.range(keys.endpoints())).kvs.filter((kv) => kv.value.includes('fztls1')).length, 1, 'the endpoint record is in etcd');
  const del = await rt.del(list, a, add.json);
  t.is(del.code, 0, del.stdout + del.stderr);
  t.is((await s.range(keys.endpoints())).kvs.filter((kv) => kv.value.includes('fztls1')).length, 0);
});

test('daemon on etcd:// with user/password registers its host; a wrong password stops it with one line', async (t) => {
  t.timeout(180_000);
  const cluster = await startEtcdSingle();
  t.teardown(() => cluster.stop());
  const ctl = (...args: string[]) => run('etcdctl', [`--endpoints=${cluster.endpoints[0]}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 20_000 });
  await ctl('user', 'add', 'root', '--new-user-password=fz-s3cret', '--interactive=false');
  await ctl('auth', 'enable');
  const hostPort = cluster.endpoints[0]!.replace('http://', '');
  const { host, dir } = await hostFor(t, cluster, 'fzauth');

  const bad = await startDaemon({ dir: join(dir, 'bad'), netnsPath: host.path, store: `etcd://root:wrong-pw@${hostPort}`, extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(() => bad.cleanup());
  const code = await new Promise<number | null>((resolve) => bad.child.once('exit', (c) => resolve(c)));
  t.not(code, 0);
  const said = bad.logs.join('\n');
  t.false(said.includes('wrong-pw'), `the password is not shown: ${said}`);
  t.notRegex(said, /\n\s+at /, 'no stack trace');

  const url = `etcd://root:fz-s3cret@${hostPort}`;
  const d = await startDaemon({ dir: join(dir, 'good'), netnsPath: host.path, hostId: 'fz-auth', store: url, extraArgs: ['--reconcile-interval', '0'] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready', 120_000);
  t.like(await hostRecord(url, 'fz-auth'), { id: 'fz-auth' });
  t.false(d.logs.join('\n').includes('fz-s3cret'), 'the password never reaches the logs');
});
