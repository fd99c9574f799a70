// The daemon for real: started in a test namespace, it opens the embedded store,
// registers the host under a lease, serves its local API, and stops on SIGTERM.
import test from 'ava';
import { request } from 'node:http';
import { statSync, existsSync } from 'node:fs';
import { NetnsSet } from '../harness/netns.js';
import { startDaemon, spawnCli } from '../harness/daemon.js';
import { openStore } from '../../store/open.js';
import { keys } from '../../store/keys.js';

function getJson(socketPath: string, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject).end();
  });
}

function collect(child: ReturnType<typeof spawnCli>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

test('daemon starts, registers the host with its advertise address, answers, and stops on SIGTERM', async (t) => {
  const nets = new NetnsSet('dmn');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const peer = await nets.add('p');
  await nets.link(host, 'u0', '10.231.0.2/24', peer, 'u1', '10.231.0.1/24');
  await host.ip('route', 'add', 'default', 'via', '10.231.0.1');

  const d = await startDaemon({ netnsPath: host.path, hostId: 'host-a', extraArgs: ['--metrics', '127.0.0.1:9464'] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready');

  // /metrics and the topology API on the --metrics address (loopback of the host namespace).
  const metrics = await host.exec('curl', ['-sf', 'http://127.0.0.1:9464/metrics']);
  t.regex(metrics, /^tsoverlay_hosts\{[^}]*\} 1$/m);
  t.regex(metrics, /^tsoverlay_store_request_duration_seconds_count\{/m);
  const topo = JSON.parse(await host.exec('curl', ['-sf', 'http://127.0.0.1:9464/api/topology']));
  t.true(JSON.stringify(topo).includes('host-a'));

  // The socket is root-only and answers with this host's identity.
  t.is(statSync(d.socket).mode & 0o777, 0o600);
  const status = await getJson(d.socket, '/v1/status');
  t.is(status.hostId, 'host-a');
  t.is(status.advertise, '10.231.0.2');

  // The host record is in the store, attached to a lease.
  const store = await openStore(d.store);
  t.teardown(() => store.close());
  const rec = await store.get(keys.host('host-a'));
  t.truthy(rec?.lease);
  t.like(JSON.parse(rec!.value), { id: 'host-a', advertise: '10.231.0.2' });

  // `host ls --json` reads the same store.
  const ls = await collect(spawnCli(['host', 'ls', '--store', d.store, '--json']));
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(JSON.parse(ls.stdout), [{ id: 'host-a', advertise: '10.231.0.2', alive: true }]);

  t.is(await d.stop(), 0);
  t.false(existsSync(d.socket));
  await d.waitForLog('daemon stopped');
});

test('without a default route the first global address is advertised; none means alone', async (t) => {
  const nets = new NetnsSet('dmn2');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const d1 = await startDaemon({ netnsPath: host.path, hostId: 'lonely' });
  t.teardown(() => d1.cleanup());
  const warn = await d1.waitForLog(/works alone/);
  t.is(warn.level, 40);
  await d1.waitForLog('daemon ready');
  t.is((await getJson(d1.socket, '/v1/status')).advertise, null);
  t.is(await d1.stop(), 0);

  const peer = await nets.add('p');
  await nets.link(host, 'u0', '10.232.0.5/24', peer, 'u1', '10.232.0.1/24');
  const d2 = await startDaemon({ netnsPath: host.path, hostId: 'lonely', dir: d1.dir });
  t.teardown(() => d2.stop().then(() => undefined));
  await d2.waitForLog('daemon ready');
  t.is((await getJson(d2.socket, '/v1/status')).advertise, '10.232.0.5');
});

test('a bad flag or config value stops the daemon with a message naming it', async (t) => {
  const r = await collect(spawnCli(['daemon', '--dns-port', '0', '--state-dir', '/tmp/never-used']));
  t.is(r.code, 2);
  t.regex(r.stderr, /dnsPort: expected a port 1-65535, got "0"/);
  const r2 = await collect(spawnCli(['daemon', '--store', 'mysql://x']));
  t.is(r2.code, 2);
  t.regex(r2.stderr, /store: expected sqlite:.*"mysql:\/\/x"/);
});
