// Benchmark of netlink/: one container interface through our API vs `ip` spawned per command,
// and 1,000 veth pairs created in one batch and deleted by link group. Run: npx tsx bench/netlink.ts
// Everything happens in namespaces this script creates (named tsob-…) and deletes, even on failure.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Kernel, type NetnsHandle } from '../netlink/index.js';

const ITERATIONS = Number(process.env.NETLINK_BENCH_ITER ?? 60);
const PAIRS = Number(process.env.NETLINK_BENCH_PAIRS ?? 1000);
const SKIP_SPAWN_PAIRS = process.argv.includes('--quick');

function sh(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim()}`))));
  });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** One container interface via our API: veth into the container + master + up; addr + up + route inside. */
async function viaApi(host: NetnsHandle, ctr: NetnsHandle, i: number): Promise<void> {
  await host.batch((b) =>
    b.linkAdd({ kind: 'veth', name: `vb${i}`, master: 'br0', up: true, peer: { name: 'eth0', netns: ctr.path! } }),
  );
  await ctr.batch((b) => b.addrAdd('eth0', '10.77.0.2/24').linkSetUp('eth0').routeAdd({ dst: 'default', via: '10.77.0.1' }));
}

/** One process: the container-side batch creates the host end already enslaved (bridge ifindex cached). */
async function viaApiOne(host: NetnsHandle, ctr: NetnsHandle, i: number, brIndex: number): Promise<void> {
  await ctr.batch((b) =>
    b
      .linkAdd({ kind: 'veth', name: `vb${i}`, netns: host.path!, masterIndex: brIndex, up: true, peer: { name: 'eth0' } })
      .addrAdd('eth0', '10.77.0.2/24')
      .linkSetUp('eth0')
      .routeAdd({ dst: 'default', via: '10.77.0.1' }),
  );
}

/** The same, the way a shell script does it: one `ip` process per step. */
async function viaSpawn(hostName: string, ctrName: string, i: number): Promise<void> {
  await sh('ip', ['-n', hostName, 'link', 'add', `vb${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctrName]);
  await sh('ip', ['-n', hostName, 'link', 'set', `vb${i}`, 'master', 'br0']);
  await sh('ip', ['-n', hostName, 'link', 'set', `vb${i}`, 'up']);
  await sh('ip', ['-n', ctrName, 'addr', 'add', '10.77.0.2/24', 'dev', 'eth0']);
  await sh('ip', ['-n', ctrName, 'link', 'set', 'eth0', 'up']);
  await sh('ip', ['-n', ctrName, 'route', 'add', 'default', 'via', '10.77.0.1']);
}

async function containerInterface(k: Kernel, hostName: string, ctrName: string): Promise<void> {
  const host = k.ns(`/var/run/netns/${hostName}`);
  const ctr = k.ns(`/var/run/netns/${ctrName}`);
  const br = (await host.ensureBridge('br0')).link;
  await host.addrAdd('br0', '10.77.0.1/24');
  const api: number[] = [];
  const one: number[] = [];
  const ip: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    // Interleaved so all three see the same machine load; deleting the host end removes eth0 too.
    api.push(await time(() => viaApi(host, ctr, i)));
    await host.linkDel(`vb${i}`);
    one.push(await time(() => viaApiOne(host, ctr, i, br.index)));
    await host.linkDel(`vb${i}`);
    ip.push(await time(() => viaSpawn(hostName, ctrName, i)));
    await host.linkDel(`vb${i}`);
  }
  const line = (label: string, xs: number[]) => console.log(`  ${label.padEnd(44)} p50 ${fmt(pct(xs, 50))}  p95 ${fmt(pct(xs, 95))}`);
  console.log(`one container interface (veth+master+up, addr+up+route in the container), ${ITERATIONS} runs each:`);
  line('netlink API, 1 process (masterIndex):', one);
  line('netlink API, 2 processes (host + container):', api);
  line('ip spawned per command (6 processes):', ip);
  console.log(`  ratio ip/API p50: ${(pct(ip, 50) / pct(one, 50)).toFixed(2)}x (1 process), ${(pct(ip, 50) / pct(api, 50)).toFixed(2)}x (2 processes)`);
  console.log(`  budget p50 <= 10 ms: ${pct(one, 50) <= 10 ? 'met' : 'MISSED'} (1 process), ${pct(api, 50) <= 10 ? 'met' : 'MISSED'} (2 processes)`);
}

async function massVeth(k: Kernel, nsName: string): Promise<void> {
  const h = k.ns(`/var/run/netns/${nsName}`);
  const create = await time(() =>
    h.batch((b) => {
      for (let i = 0; i < PAIRS; i++) b.linkAdd({ kind: 'veth', name: `ma${i}`, group: 77, peer: { name: `mb${i}`, group: 77 } });
    }),
  );
  const count = (await h.links({ group: 77 })).length;
  const del = await time(() => h.linkDeleteGroup(77));
  const left = (await h.links({ group: 77 })).length;
  console.log(`${PAIRS} veth pairs (${count} links seen, ${left} left after delete):`);
  console.log(`  create, one ip -batch:        ${fmt(create)}`);
  console.log(`  delete all by link group:     ${fmt(del)}`);
  if (SKIP_SPAWN_PAIRS) return;
  const spawnCreate = await time(async () => {
    for (let i = 0; i < PAIRS; i++) {
      await sh('ip', ['-n', nsName, 'link', 'add', `sa${i}`, 'group', '78', 'type', 'veth', 'peer', 'name', `sb${i}`, 'group', '78']);
    }
  });
  await h.linkDeleteGroup(78);
  console.log(`  create, ${PAIRS}x spawned ip:      ${fmt(spawnCreate)}  (${(spawnCreate / create).toFixed(1)}x the batch)`);
}

async function main(): Promise<void> {
  const prefix = `tsob-${randomBytes(3).toString('hex')}`;
  const names = [`${prefix}-h`, `${prefix}-c`, `${prefix}-m`];
  const k = new Kernel();
  try {
    for (const n of names) await sh('ip', ['netns', 'add', n]);
    await containerInterface(k, names[0]!, names[1]!);
    await massVeth(k, names[2]!);
  } finally {
    for (const n of names) await sh('ip', ['netns', 'delete', n]).catch(() => {});
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
