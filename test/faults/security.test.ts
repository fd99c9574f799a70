// Security regressions: the daemon's sockets (plugin sockets 0660 root:root, local API 0600,
// unreachable for uid 65534, no network listener), names from users never reaching a command
// line or firewall rule unvalidated, and a CNI delegate `type` with a path in it refused before
// anything runs.
import test from 'ava';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Kernel } from '../../netlink/index.js';
import { delegate } from '../../plugins/cni/delegate.js';
import { parseEnv } from '../../plugins/cni/env.js';
import { Firewall } from '../../proxy/firewall.js';
import { startDaemon } from '../harness/daemon.js';
import { tryRun } from '../harness/exec.js';
import { NetnsSet } from '../harness/netns.js';
import { bridgeConf, makeWorld } from '../cni/world.js';
import { bridgeEnv } from '../drivers/fixture.js';
import { recordingKernelTools, RecordingTools, type ToolCall } from './fixtures/recording-tools.js';

/** Try to connect to a unix socket as root or as `uid` (gid the same, no supplementary groups). */
async function connectAs(uid: number | 'root', path: string): Promise<string> {
  const probe = `require('net').createConnection(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(3); });`;
  const argv = uid === 'root' ? [process.execPath, '-e', probe, path] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', process.execPath, '-e', probe, path];
  const r = await tryRun(argv[0]!, argv.slice(1), { timeoutMs: 10_000, cwd: '/' });
  return r.stdout.trim() || r.stderr.trim();
}

function mode(path: string): { mode: string; uid: number; gid: number } {
  const s = statSync(path);
  return { mode: (s.mode & 0o777).toString(8), uid: s.uid, gid: s.gid };
}

test('daemon: plugin sockets are 0660 root:root, the local API 0600; uid 65534 reaches neither', async (t) => {
  const set = new NetnsSet('sec');
  t.teardown(() => set.cleanup());
  const ns = await set.add('d');
  const d = await startDaemon({ netnsPath: ns.path });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready', 60_000);
  // Open every directory on the way, so only the sockets' own modes can keep uid 65534 out.
  for (const dir of [d.dir, d.pluginDir, dirname(d.socket)]) chmodSync(dir, 0o755);
  const control = join(d.pluginDir, 'control.sock');
  const server: Server = createServer((c) => c.end());
  await new Promise<void>((resolve) => server.listen(control, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  chmodSync(control, 0o666);
  t.is(await connectAs(65534, control), 'connected', 'the probe itself works for uid 65534');

  const sockets = readdirSync(d.pluginDir).filter((n) => n.endsWith('.sock') && n !== 'control.sock').sort();
  t.true(['tsbridge.sock', 'tshost.sock', 'tsipam.sock'].every((s) => sockets.includes(s)), sockets.join(' '));
  for (const name of sockets) {
    const path = join(d.pluginDir, name);
    t.deepEqual(mode(path), { mode: '660', uid: 0, gid: 0 }, name);
    t.is(await connectAs('root', path), 'connected', name);
    t.is(await connectAs(65534, path), 'EACCES', name);
  }
  t.deepEqual(mode(d.socket), { mode: '600', uid: 0, gid: 0 });
  t.is(await connectAs('root', d.socket), 'connected');
  t.is(await connectAs(65534, d.socket), 'EACCES');

  // Nothing listens on the network for the daemon: no TCP or UDP socket of its process.
  const ss = await ns.exec('ss', ['-Hltunp']);
  const pid = d.child.pid!;
  t.false(ss.split('\n').some((l) => l.includes(`pid=${pid},`)), ss);
});

const MARK = 'PWN';
/** Names a user might type, each carrying MARK so that a trace of it on a command line shows. */
const HOSTILE = [
  `${MARK}$(id)`, `${MARK};id`, `${MARK}\`id\``, `${MARK}'x`, `${MARK}"x`, `${MARK} x`, `${MARK}\nx`, `${MARK}\tx`, `${MARK}|x`, `${MARK}&x`,
  `${MARK}>x`, `${MARK}*`, `${MARK}/../x`, `${MARK}é`, `${MARK}\u202e`, `-${MARK}`, `--${MARK}`, `${MARK}#x`, `${MARK}\\x`, `${MARK}%x`, `${MARK}\u0000x`,
];
/** What a token on a tool's command line or in its batch/restore input may consist of. */
const SAFE_TOKEN = /^[A-Za-z0-9_.:/@=+,%*![\]-]+$/;

test('names from users never reach a command line or a firewall rule unvalidated', async (t) => {
  const env = await bridgeEnv(t, 'secn', ['c1']);
  const dir = mkdtempSync(join(tmpdir(), 'tsot-sec-tools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rec = await recordingKernelTools(dir);
  const fwTools = new RecordingTools(env.host.path);
  const fw = new Firewall({ tools: fwTools });
  await fw.init();
  const driver = env.newDriver({ kernel: new Kernel({ tools: rec.tools, timeoutMs: 20_000 }), firewall: fw });
  const net = 'a'.repeat(64);
  const accepted: string[] = [];
  const attempt = async (what: string, p: Promise<unknown>) => {
    try {
      await p;
      accepted.push(what);
    } catch {
      // refused: fine, as long as nothing of it reached a tool
    }
  };
  await driver.createNetwork({ id: net, name: HOSTILE[0], subnets: [{ subnet: '10.77.0.0/24', gateway: '10.77.0.1' }] });
  for (const h of HOSTILE) {
    await attempt(`network id ${h}`, driver.createNetwork({ id: h, subnets: [{ subnet: '10.78.0.0/24' }] }));
    // A name is free text: accepted (a few suffice; each makes a bridge), stored, never run.
    if (HOSTILE.indexOf(h) < 4) await attempt(`network name ${h}`, driver.createNetwork({ id: `n${HOSTILE.indexOf(h)}`, name: h, subnets: [{ subnet: `10.79.${HOSTILE.indexOf(h)}.0/24` }] }));
    for (const key of ['bridge', 'mtu', 'icc', 'hostBindingIpv4']) {
      await attempt(`option ${key} ${h}`, driver.createNetwork({ id: `o${key}`, subnets: [{ subnet: '10.80.0.0/24' }], options: { [key]: h } }));
    }
    await attempt(`endpoint id ${h}`, driver.createEndpoint(net, { id: h, addresses: ['10.77.0.9/24'] }));
    await attempt(`address ${h}`, driver.createEndpoint(net, { id: 'e-addr', addresses: [h] }));
    await attempt(`mac ${h}`, driver.createEndpoint(net, { id: 'e-mac', addresses: ['10.77.0.8/24'], mac: h }));
  }
  // One endpoint whose free-text fields are all hostile, joined and published for real.
  await driver.createEndpoint(net, { id: 'ep1', addresses: ['10.77.0.2/24'], containerId: HOSTILE[1], names: HOSTILE.slice(0, 5), aliases: HOSTILE.slice(5, 10) });
  for (const h of HOSTILE) {
    await attempt(`ifname ${h}`, driver.join(net, 'ep1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: h }));
    await attempt(`netns ${h}`, driver.join(net, 'ep1', { mode: 'netns', netnsPath: `/var/run/netns/${h}`, ifname: 'eth0' }));
  }
  await driver.join(net, 'ep1', { mode: 'netns', netnsPath: env.ctr.c1!.path, ifname: 'eth0' });
  for (const h of HOSTILE) {
    await attempt(`hostIp ${h}`, driver.publish(net, 'ep1', [{ proto: 'tcp', containerPort: 80, hostIp: h, hostPort: 8080, hostPortEnd: 8080 }]));
    await attempt(`proto ${h}`, driver.publish(net, 'ep1', [{ proto: h as 'tcp', containerPort: 80, hostIp: '', hostPort: 8081, hostPortEnd: 8081 }]));
  }
  await driver.publish(net, 'ep1', [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 8082, hostPortEnd: 8082 }]);
  await driver.deleteEndpoint(net, 'ep1');
  await driver.deleteNetwork(net);

  const calls: ToolCall[] = [...(await rec.calls()), ...fwTools.calls];
  t.true(calls.some((c) => c.tool === 'ip') && calls.some((c) => c.tool === 'iptables-restore'), 'the recording saw the tools');
  const bad: string[] = [];
  for (const c of calls) {
    const tokens = [...c.args, ...c.stdin.split(/\s+/).filter((s) => s !== '')];
    for (const tok of tokens) {
      if (tok.includes(MARK) || !SAFE_TOKEN.test(tok)) bad.push(`${c.tool} ${JSON.stringify(tok)} in ${JSON.stringify(c.args).slice(0, 200)}`);
    }
  }
  t.log(`${calls.length} tool calls checked (${calls.filter((c) => c.stdin !== '').length} with batch or restore input)`);
  t.deepEqual(bad, []);
  // Free text is allowed in, but only into the store: the network's name and the endpoint's names.
  t.true(accepted.some((a) => a.startsWith('network name')), accepted.join(', '));
  t.false(accepted.some((a) => /^(network id|option|endpoint id|address|mac|ifname|netns|hostIp|proto) /.test(a)), accepted.join(', '));
});

test('a CNI delegate type with a path in it is refused before anything runs (in-process and through tsbridge)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-sec-type-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'ran');
  const canary = join(dir, 'canary');
  writeFileSync(canary, `#!/bin/sh\ntouch '${marker}'\necho '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}'\n`, { mode: 0o755 });
  // CNI_PATH's first entry is <dir>/bin, so "../canary" would name the canary if it were followed.
  const env = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: `${dir}/bin:${dir}` });
  for (const type of ['../canary', `${dir}/canary`, 'bin/../canary', '..', 'a\\canary', 'canary\0']) {
    const err = await t.throwsAsync(delegate({ type, command: 'ADD', stdin: '{}', env, cniVersion: '1.0.0' }));
    t.like(err, { code: 7 }, type);
  }
  t.false(existsSync(marker), 'the canary never ran');
  // The control: by its plain name, found in CNI_PATH, it does run.
  await delegate({ type: 'canary', command: 'ADD', stdin: '{"cniVersion":"1.0.0","name":"n"}', env, cniVersion: '1.0.0' });
  t.true(existsSync(marker));
  rmSync(marker);

  // End to end: the real tsbridge executable (in a test namespace) with such an ipam type.
  const w = await makeWorld(t, 'sectype');
  const ctr = await w.container('c');
  for (const type of ['../canary', `${dir}/canary`]) {
    const conf = { ...bridgeConf(w, '10.219.0.0/24'), ipam: { type } };
    const r = await w.cni('tsbridge', 'ADD', conf, w.env(ctr, 'sectype', { path: `${w.bin}:${dir}` }));
    t.is(r.code, 1, r.stdout + r.stderr);
    t.is(r.json?.code, 7, r.stdout);
    t.regex(r.json?.msg ?? '', /ipam\.type/);
  }
  t.false(existsSync(marker), 'the canary never ran');
  t.is((await w.host.ip('-o', 'link', 'show', 'type', 'bridge')).trim(), '', 'no bridge was made');
});
