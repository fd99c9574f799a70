// `tsoverlay doctor` against a test namespace standing in for the host (netnsPath): broken set-ups
// fail with the command that fixes them, and running that command makes the check pass.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { doctorChecks, runDoctor, type Check } from '../../daemon/commands/doctor.js';
import { probeNamespace } from '../../daemon/observability/doctor-kernel.js';
import { judgeForward, NFT_RELAY_RULE, parseForward } from '../../daemon/observability/doctor-firewall.js';
import { keys, PREFIX } from '../../store/keys.js';
import { run } from '../harness/exec.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { network, tempStore } from './fixtures.js';

const byName = (checks: Check[], name: string) => {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${checks.map((x) => x.name).join(', ')}`);
  return c;
};

/** Run a fix command as printed (simple commands only: no quoting), e.g. "nsenter --net=… -- sysctl -w …". */
async function runFix(fix: string): Promise<void> {
  const [cmd, ...args] = fix.split(';')[0]!.trim().split(/\s+/);
  await run(cmd!, args);
}

/** A "host" namespace whose underlay eth0 (MTU 1400) reaches a "peer" namespace; default route via the peer. */
async function hostWithPeer(t: { teardown(fn: () => Promise<void>): void }): Promise<{ host: Netns; peer: Netns }> {
  const set = new NetnsSet('doc');
  t.teardown(() => set.cleanup());
  const host = await set.add('host');
  const peer = await set.add('peer');
  await set.link(host, 'eth0', '10.99.0.1/24', peer, 'eth0', '10.99.0.2/24', 1400);
  await host.ip('route', 'add', 'default', 'via', '10.99.0.2');
  return { host, peer };
}

test('ip_forward=0 in the inspected namespace fails with the fix; running the fix makes it pass', async (t) => {
  const { host } = await hostWithPeer(t);
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await host.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
  const opts = { store: tmp.url, stateDir: tmp.dir, netnsPath: host.path, hostId: 'hx', timeoutMs: 3000 };

  const before = await doctorChecks(opts);
  const fwd = byName(before, 'ip-forward');
  t.false(fwd.ok);
  t.regex(fwd.detail, /ip_forward is 0/);
  t.is(fwd.fix, `nsenter --net=${host.path} -- sysctl -w net.ipv4.ip_forward=1`);
  for (const name of ['kernel-bridge', 'kernel-veth', 'kernel-vxlan', 'store', 'overlay-mtu', 'peers']) {
    t.true(byName(before, name).ok, `${name}: ${byName(before, name).detail}`);
  }
  t.regex(byName(before, 'store').detail, /put\/get\/delete in [\d.]+ ms/);
  t.is((await tmp.store.range(`${PREFIX}doctor/`)).kvs.length, 0, 'the doctor key was deleted');

  await runFix(fwd.fix!);
  t.is((await host.exec('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');
  let out = '';
  const code = await runDoctor({ ...opts, json: true, write: (s) => (out += s) });
  const report = JSON.parse(out) as { checks: Check[] };
  t.like(byName(report.checks, 'ip-forward'), { ok: true, fix: null });
  for (const c of report.checks) t.deepEqual(Object.keys(c).sort(), ['detail', 'fix', 'name', 'ok']);
  t.is(code, report.checks.every((c) => c.ok) ? 0 : 1);
});

test('FORWARD policy DROP without our jump fails; with the jump in place it passes (read-only)', async (t) => {
  const { host } = await hostWithPeer(t);
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const opts = { store: tmp.url, stateDir: tmp.dir, netnsPath: host.path, timeoutMs: 3000 };
  await host.exec('iptables', ['-P', 'FORWARD', 'DROP']);
  const dump = () => host.exec('iptables-save', ['-t', 'filter']).then((s) => s.replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, ''));
  const seen = await dump();

  let c = byName(await doctorChecks(opts), 'forward-policy');
  t.false(c.ok);
  t.regex(c.detail, /policy is DROP/);
  t.regex(c.fix!, /iptables -P FORWARD ACCEPT/);
  t.is(await dump(), seen, 'the doctor changed no rule');

  // The nft backend's relay, written the way the kernel hands it back to iptables-save.
  const relay = NFT_RELAY_RULE.slice('-A FORWARD '.length).split(' ');
  await host.exec('iptables', ['-A', 'FORWARD', ...relay]);
  c = byName(await doctorChecks(opts), 'forward-policy');
  t.true(c.ok, c.detail);
  t.regex(c.detail, /DROP \(dockerd\) and tsoverlay's nft relay rule/);
  await host.exec('iptables', ['-D', 'FORWARD', ...relay]);

  await host.exec('iptables', ['-N', 'TSO-FORWARD']);
  await host.exec('iptables', ['-A', 'FORWARD', '-j', 'DROP']);
  await host.exec('iptables', ['-A', 'FORWARD', '-j', 'TSO-FORWARD']);
  c = byName(await doctorChecks(opts), 'forward-policy');
  t.false(c.ok);
  t.regex(c.detail, /rule 1 of FORWARD drops everything/);
  t.is(c.fix, `nsenter --net=${host.path} -- iptables -I FORWARD 1 -j TSO-FORWARD`);
  await runFix(c.fix!);
  c = byName(await doctorChecks(opts), 'forward-policy');
  t.true(c.ok, c.detail);
  t.regex(c.detail, /DROP \(dockerd\) and tsoverlay's TSO-FORWARD jump accepts/);
});

test('overlay MTU above underlay − 50 and unreachable or silent peers fail with fixes', async (t) => {
  const { host } = await hostWithPeer(t);
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const lease = await tmp.store.lease(60);
  t.teardown(() => lease.revoke().catch(() => {}));
  const put = (id: string, advertise: string | null) =>
    tmp.store.put(keys.host(id), JSON.stringify({ id, advertise, version: '0.1.0', pid: 1, startedAt: '' }), { lease: lease.id });
  await put('h1', '10.99.0.2');
  await put('h2', '10.99.0.9');
  await put('h3', null);
  const { RecordStore } = await import('../../plugins/drivers/common/record-store.js');
  await new RecordStore(tmp.store).createNetwork(network('ov1', 'ov', '10.88.0.0/24', { driver: 'overlay', scope: 'global', hostId: undefined, mtu: 1450, vni: 4100 }));
  const opts = { store: tmp.url, stateDir: tmp.dir, netnsPath: host.path, hostId: 'hx', timeoutMs: 3000 };

  let checks = await doctorChecks(opts);
  const mtu = byName(checks, 'overlay-mtu');
  t.false(mtu.ok);
  t.regex(mtu.detail, /ov \(MTU 1450\) exceed eth0's MTU 1400 − 50 = 1350/);
  t.true(mtu.fix!.startsWith(`nsenter --net=${host.path} -- ip link set dev eth0 mtu 1500`));
  t.regex(mtu.fix!, /-o mtu=1350/);
  const peers = byName(checks, 'peers');
  t.false(peers.ok);
  t.regex(peers.detail, /h1 10\.99\.0\.2 answers/);
  t.regex(peers.detail, /h2 10\.99\.0\.9 does not answer/);
  t.regex(peers.detail, /h3 has no advertise address/);
  t.regex(peers.fix!, /on h3: tsoverlay daemon --advertise/);

  await runFix(mtu.fix!);
  await tmp.store.delete(keys.host('h2'));
  await put('h3', '10.99.0.1');
  checks = await doctorChecks(opts);
  t.true(byName(checks, 'overlay-mtu').ok, byName(checks, 'overlay-mtu').detail);
  t.true(byName(checks, 'peers').ok, byName(checks, 'peers').detail);
});

test('an unreachable store fails the store check with a command to diagnose it', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const missing = await doctorChecks({ stateDir: `${tmp.dir}/nowhere`, timeoutMs: 2000 });
  t.like(byName(missing, 'store'), { ok: false });
  t.regex(byName(missing, 'store').fix!, /tsoverlay daemon --store sqlite:\/\/.*nowhere\/store\.db/);
  t.false(missing.some((c) => c.name === 'peers'), 'cluster checks need the store');
  const etcd = await doctorChecks({ store: 'etcd://127.0.0.1:1?timeoutMs=300', stateDir: tmp.dir, timeoutMs: 2000 });
  t.like(byName(etcd, 'store'), { ok: false, fix: 'etcdctl --endpoints=http://127.0.0.1:1 endpoint health' });
});

test('FORWARD judgement from iptables-save text (pure)', (t) => {
  const scope = { timeoutMs: 1000 };
  const judge = (dump: string) => judgeForward(parseForward(dump), scope);
  t.true(judge('*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n').ok);
  t.true(judge('').ok);
  t.like(judge('*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n'), { ok: false });
  t.true(judge('*filter\n:FORWARD DROP [0:0]\n:TSO-FORWARD - [0:0]\n-A FORWARD -j DOCKER-USER\n-A FORWARD -j TSO-FORWARD\nCOMMIT\n').ok);
  t.like(judge('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n'), { ok: false, fix: 'iptables -D FORWARD 1' });
});

test('FORWARD judgement recognises the nft backend\'s mark relay as tsoverlay\'s own rule (pure)', (t) => {
  const scope = { timeoutMs: 1000 };
  const judge = (dump: string) => judgeForward(parseForward(dump), scope);
  // dockerd's chain as 20.10 leaves it, with the relay the nft backend appends.
  const docker = ':FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n-A FORWARD -o docker0 -j DOCKER\n';
  const ok = judge(`*filter\n${docker}${NFT_RELAY_RULE}\nCOMMIT\n`);
  t.true(ok.ok, ok.detail);
  t.regex(ok.detail, /nft relay rule/);
  const missing = judge(`*filter\n${docker}COMMIT\n`);
  t.false(missing.ok);
  t.regex(missing.detail, /no tsoverlay rule accepts/);
  t.regex(missing.fix!, /iptables -P FORWARD ACCEPT; or start `tsoverlay daemon`/);
  const shadowed = judge(`*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\n${NFT_RELAY_RULE}\nCOMMIT\n`);
  t.like(shadowed, { ok: false, fix: 'iptables -I FORWARD 1 -m mark --mark 0x2000/0x2000 -j ACCEPT' });
  t.regex(shadowed.detail, /rule 1 of FORWARD drops everything before tsoverlay's nft relay rule/);
});

test.serial('probe namespaces a killed doctor left behind are removed by the next doctor; a live doctor\'s are kept', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  // A pid that ran and exited: its doctor was "killed mid-probe".
  const gone = spawnSync('true').pid!;
  const stale = `tsodoc-${gone.toString(36)}-abc123`;
  const live = `tsodoc-${process.pid.toString(36)}-abc123`;
  for (const n of [stale, live]) await run('ip', ['netns', 'add', n]);
  t.teardown(async () => {
    for (const n of [stale, live]) await run('ip', ['netns', 'delete', n]).catch(() => undefined);
  });
  const checks = await doctorChecks({ store: tmp.url, stateDir: tmp.dir, timeoutMs: 3000 });
  t.true(byName(checks, 'kernel-bridge').ok);
  const left = (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
  t.false(left.includes(stale), 'the dead doctor\'s probe namespace is gone');
  t.true(left.includes(live), 'a running doctor\'s probe namespace is left alone');
  t.false(left.some((n) => n?.startsWith(`tsodoc-${process.pid.toString(36)}-`) && n !== live), 'this doctor removed its own probe');
});

test('the probe namespace has no name and ends with the doctor, even when the doctor is killed', async (t) => {
  const own = readlinkSync('/proc/self/ns/net');
  const probe = await probeNamespace(5000);
  const holder = Number(/^\/proc\/(\d+)\/ns\/net$/.exec(probe.path)![1]);
  t.not(readlinkSync(probe.path), own);
  probe.release();
  await waitGone(t, holder);

  // A doctor process killed outright while it holds a probe: the holder sees its pipe close.
  const code = `const { probeNamespace } = await import(${JSON.stringify(new URL('../../daemon/observability/doctor-kernel.ts', import.meta.url).href)});
    const p = await probeNamespace(5000); console.log(p.path); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const path = await new Promise<string>((resolve) => child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(d.trim())));
  const killedHolder = Number(/^\/proc\/(\d+)\/ns\/net$/.exec(path)![1]);
  t.true(existsSync(`/proc/${killedHolder}`));
  child.kill('SIGKILL');
  await waitGone(t, killedHolder);
});

async function waitGone(t: { true(v: boolean, m?: string): void }, pid: number): Promise<void> {
  const end = Date.now() + 5000;
  while (existsSync(`/proc/${pid}/ns/net`) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.true(!existsSync(`/proc/${pid}/ns/net`), `holder ${pid} is gone`);
}
