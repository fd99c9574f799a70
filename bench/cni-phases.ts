// Where the daemon's share of a CNI call goes: tsbridge+tsipam ADD/DEL run in-process through
// serveHandOff (reply "exec", as the launcher sends them) inside a bench host namespace, with
// the driver, IPAM and kernel steps timed (prototype wrappers); then N concurrent ADDs with
// the daemon's CPU time. Run: sudo npx tsx bench/cni-phases.ts [N=20] [CONCURRENT=100]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ARGS = process.argv[2] === '--host' ? process.argv.slice(4) : process.argv.slice(2);
const N = Number(ARGS[0] ?? 20);
const CONCURRENT = Number(ARGS[1] ?? 100);
const times: Record<string, number[]> = {};
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : 0);

/** Time every call of proto[name] under `label`. */
function wrap(proto: Record<string, unknown>, name: string, label: string): void {
  const orig = proto[name] as (...a: unknown[]) => Promise<unknown>;
  proto[name] = async function (this: unknown, ...a: unknown[]) {
    const t0 = performance.now();
    try {
      return await orig.apply(this, a);
    } finally {
      (times[label] ??= []).push(performance.now() - t0);
    }
  };
}

async function inHost(work: string): Promise<void> {
  const { SpawnHelper } = await import('../netlink/spawn-helper.js');
  const { serveHandOff } = await import('../plugins/cni/handoff-server.js');
  const { benchCniDaemon } = await import('./cni-daemon.js');
  const { BridgeDriver } = await import('../plugins/drivers/bridge/bridge.js');
  const { BridgeKernel } = await import('../plugins/drivers/bridge/bridge-kernel.js');
  const { IpamRunner } = await import('../plugins/cni/ipam-runner.js');
  for (const m of ['createNetwork', 'endpoint', 'createEndpoint', 'join', 'deleteEndpoint']) wrap(BridgeDriver.prototype as never, m, `driver.${m}`);
  for (const m of ['addNetnsVeth', 'deleteVeth']) wrap(BridgeKernel.prototype as never, m, `  kernel.${m}`);
  wrap(IpamRunner.prototype as never, 'add', 'ipam.add');
  wrap(IpamRunner.prototype as never, 'run', 'ipam.run (DEL)');
  const storeUrl = `sqlite://${join(work, 'store.db')}`;
  const helper = new SpawnHelper();
  const { store, specFor } = await benchCniDaemon(storeUrl, helper.collect);
  const confOf = (name: string) => JSON.stringify({ cniVersion: '1.0.0', name, type: 'tsbridge', bridge: `tsb${name}`, isGateway: true, ipMasq: true, store: storeUrl, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.77.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] } });
  const call = (cmd: string, id: string, conf = confOf('phases')) =>
    serveHandOff({ plugin: 'tsbridge', reply: 'exec', env: { CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${id}`, CNI_IFNAME: 'eth0' }, stdin: conf }, specFor);
  const ns = (id: string) => spawnSync('ip', ['netns', 'add', id]);
  const total: Record<string, number[]> = { ADD: [], DEL: [] };
  const prefix = `tsob-ph${process.pid}`;
  try {
    for (let i = -1; i < N; i++) {
      const id = `${prefix}-s${i + 1}`;
      ns(id);
      if (i === 0) for (const k of Object.keys(times)) times[k] = [];
      for (const cmd of ['ADD', 'DEL']) {
        const t0 = performance.now();
        const r = await call(cmd, id);
        if ((r.body as { exitCode?: number }).exitCode !== 0) throw new Error(`${cmd}: ${JSON.stringify(r.body)}`);
        if (i >= 0) total[cmd]!.push(performance.now() - t0);
      }
      spawnSync('ip', ['netns', 'delete', id]);
    }
    console.log(`daemon side, ${N} sequential calls (p50 / p95):`);
    for (const [k, v] of Object.entries(total)) console.log(`  ${k} total`.padEnd(28), `${pct(v, 50).toFixed(1)} / ${pct(v, 95).toFixed(1)} ms`);
    for (const [k, v] of Object.entries(times)) console.log(`  ${k}`.padEnd(28), `${pct(v, 50).toFixed(1)} / ${pct(v, 95).toFixed(1)} ms`);
    const ids = Array.from({ length: CONCURRENT }, (_, i) => `${prefix}-c${i}`);
    ids.forEach(ns);
    for (const k of Object.keys(times)) times[k] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    // A network no ADD has made yet (as bench/cni.ts does): the first ADDs all arrive at once.
    const fresh = confOf('phasecc');
    const rs = await Promise.all(ids.map((id) => call('ADD', id, fresh)));
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const failed = rs.filter((r) => (r.body as { exitCode?: number }).exitCode !== 0).length;
    console.log(`${CONCURRENT} concurrent ADDs (a new network) in the daemon: ${wall.toFixed(0)} ms wall, daemon CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, ${failed} failed`);
    for (const [k, v] of Object.entries(times)) if (v.length) console.log(`  ${k}`.padEnd(28), `n ${v.length}, p50 ${pct(v, 50).toFixed(0)} ms, max ${pct(v, 100).toFixed(0)} ms`);
    await Promise.all(ids.map((id) => call('DEL', id, fresh)));
  } finally {
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
    for (const n of left) spawnSync('ip', ['netns', 'delete', n]);
    helper.close();
    await store.close();
  }
}

if (process.argv[2] === '--host') {
  await inHost(process.argv[3]!);
  process.exit(0);
} else {
  const work = mkdtempSync(join(tmpdir(), 'tsob-phases-'));
  const host = `tsob-ph${process.pid}-h`;
  try {
    spawnSync('ip', ['netns', 'add', host]);
    spawnSync('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('nsenter', [`--net=/var/run/netns/${host}`, '--', process.execPath, '--import=tsx', fileURLToPath(import.meta.url), '--host', work, String(N), String(CONCURRENT)], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'delete', host]);
    rmSync(work, { recursive: true, force: true });
  }
}
