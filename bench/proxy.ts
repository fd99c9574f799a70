// Benchmark of proxy/: full sync of 10,000 published ports + 1,000 services × 10 backends,
// the time of one change at N = 100 / 1,000 / 10,000, the same workload as separate `iptables`
// calls (a sample, extrapolated), and the process memory with 1,000 published ports.
// Everything runs in network namespaces this script makes and deletes (tsob-…, outside the test
// runner's tsot-… sweep). Run: npx tsx bench/proxy.ts
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { NetnsTools } from '../proxy/exec.js';
import { Firewall } from '../proxy/firewall.js';

const GOAL_FULL_MS = 500;
const GOAL_CHANGE_MS = 15;
const GOAL_RSS_MB = 150;

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

interface Ns {
  name: string;
  path: string;
  fw: Firewall;
  tools: NetnsTools;
}

async function makeNs(tag: string): Promise<Ns> {
  const name = `tsob-${randomBytes(3).toString("hex")}-${tag}`;
  sh(['ip', 'netns', 'add', name]);
  sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', name, 'link', 'add', 'tsbr0', 'type', 'bridge']);
  sh(['ip', '-n', name, 'addr', 'add', '172.20.0.1/16', 'dev', 'tsbr0']);
  const path = `/var/run/netns/${name}`;
  const tools = new NetnsTools(path);
  const fw = new Firewall({ netnsPath: path, tools });
  await fw.init();
  await fw.setNetwork({ id: 'bench', bridge: 'tsbr0', subnets: ['172.20.0.0/16'] });
  return { name, path, fw, tools };
}

const dropNs = (ns: Ns) => spawnSync('ip', ['netns', 'delete', ns.name]);
const ctr = (i: number) => `172.20.${(i >> 8) & 255}.${(i & 255) || 1}`;
const vip = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * n published ports (random host ports) and n/10 services of 10 backends, added in one bulk sync.
 * `build` = the API calls (validation, allocation, rendering); `sync` = one transaction per family.
 */
async function populate(ns: Ns, n: number): Promise<{ build: number; sync: number }> {
  const t0 = process.hrtime.bigint();
  let build = 0;
  await ns.fw.bulk(async () => {
    for (let i = 0; i < n; i++) {
      await ns.fw.publish(`ep${i}`, { networkId: 'bench', containerIp: ctr(i + 2), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 0, hostPortEnd: 0 }] });
    }
    for (let s = 0; s < n / 10; s++) {
      const backends = Array.from({ length: 10 }, (_, k) => ctr(2 + ((s * 10 + k) % n)));
      await ns.fw.setService({ name: `svc${s}`, vip: vip(s + 1), ports: [{ proto: 'tcp', port: 80 }], backends });
    }
    build = ms(t0);
  });
  return { build, sync: ms(t0) - build };
}

async function oneChange(ns: Ns, n: number, reps = 15): Promise<{ add: number; remove: number; service: number }> {
  const add: number[] = [];
  const remove: number[] = [];
  const service: number[] = [];
  for (let r = 0; r < reps; r++) {
    const id = `extra${r}`;
    let t0 = process.hrtime.bigint();
    await ns.fw.publish(id, { networkId: 'bench', containerIp: ctr(60000 + r), mappings: [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: 0, hostPortEnd: 0 }] });
    add.push(ms(t0));
    t0 = process.hrtime.bigint();
    await ns.fw.unpublish(id);
    remove.push(ms(t0));
    const backends = Array.from({ length: 10 }, (_, k) => ctr(2 + ((k + r + 1) % n)));
    t0 = process.hrtime.bigint();
    await ns.fw.setService({ name: 'svc0', vip: vip(1), ports: [{ proto: 'tcp', port: 80 }], backends });
    service.push(ms(t0));
  }
  return { add: median(add), remove: median(remove), service: median(service) };
}

/**
 * What the kernel and iptables-restore alone cost in this table: nf_tables re-validates the whole
 * table on a commit that adds a DNAT, and waits an RCU grace period on one that deletes a rule.
 */
async function kernelFloor(ns: Ns): Promise<{ add: number; del: number; empty: number }> {
  const add: number[] = [];
  const del: number[] = [];
  const empty: number[] = [];
  // A rule in one of our live port buckets: the kernel validates everything reachable from it.
  const bucket = [...ns.fw.backend(4).appliedChains().values()].find((c) => c.name.startsWith('TSO-DNAT-TCP-'))!.name;
  const rule = '-p tcp -m tcp --dport 9 -j DNAT --to-destination 172.20.0.9:80';
  for (let i = 0; i < 15; i++) {
    let t0 = process.hrtime.bigint();
    await ns.tools.run('iptables-restore', ['--noflush'], '*nat\nCOMMIT\n');
    empty.push(ms(t0));
    t0 = process.hrtime.bigint();
    await ns.tools.run('iptables-restore', ['--noflush'], `*nat\n-A ${bucket} ${rule}\nCOMMIT\n`);
    add.push(ms(t0));
    t0 = process.hrtime.bigint();
    await ns.tools.run('iptables-restore', ['--noflush'], `*nat\n-D ${bucket} ${rule}\nCOMMIT\n`);
    del.push(ms(t0));
  }
  return { add: median(add), del: median(del), empty: median(empty) };
}

/** Separate `iptables -t nat -A` calls, one process each: a sample, extrapolated to `rules`. */
function separateCalls(ns: Ns, sample: number, rules: number): number {
  sh(['nsenter', `--net=${ns.path}`, '--', 'iptables', '-t', 'nat', '-N', 'TSO-BENCH-SEP']);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < sample; i++) {
    sh(['nsenter', `--net=${ns.path}`, '--', 'iptables', '-t', 'nat', '-A', 'TSO-BENCH-SEP', '-p', 'tcp', '-m', 'tcp', '--dport', String(1000 + i), '-j', 'DNAT', '--to-destination', `${ctr(i + 2)}:80`]);
  }
  return (ms(t0) / sample) * rules;
}

async function main(): Promise<void> {
  const made: Ns[] = [];
  try {
    // Full workload.
    const big = await makeNs('full');
    made.push(big);
    const full = await populate(big, 10_000);
    const rules = (await big.tools.run('iptables-save', [])).split('\n').filter((l) => l.startsWith('-A ')).length;
    let t0 = process.hrtime.bigint();
    const noop = await big.fw.reconcile();
    const reconcileNoop = ms(t0);
    await big.tools.run('iptables', ['-t', 'nat', '-F', 'TSO-DNAT']);
    t0 = process.hrtime.bigint();
    await big.fw.reconcile();
    const repair = ms(t0);
    console.log(`full sync: 10,000 ports + 1,000 services x 10 backends = ${rules} rules: ${full.sync.toFixed(0)} ms (goal <= ${GOAL_FULL_MS} ms: ${full.sync <= GOAL_FULL_MS ? 'met' : 'missed'}); building that state through 11,000 API calls: ${full.build.toFixed(0)} ms`);
    console.log(`reconcile with nothing to do: ${reconcileNoop.toFixed(0)} ms (lines sent: ${noop[4].lines}); after a flushed TSO-DNAT: ${repair.toFixed(0)} ms`);
    const perCall = separateCalls(big, 200, rules);
    console.log(`same rules as separate iptables calls (200 sampled, extrapolated): ${(perCall / 1000).toFixed(1)} s = ${(perCall / full.sync).toFixed(0)}x slower`);

    // One change at each N (N ports, N/10 services).
    for (const n of [100, 1_000, 10_000]) {
      const ns = n === 10_000 ? big : await makeNs(`n${n}`);
      if (ns !== big) {
        made.push(ns);
        await populate(ns, n);
      }
      const c = await oneChange(ns, n);
      const f = await kernelFloor(ns);
      const worst = Math.max(c.add, c.remove, c.service);
      console.log(`one change at N=${n}: publish ${c.add.toFixed(1)} ms, unpublish ${c.remove.toFixed(1)} ms, service backend swap ${c.service.toFixed(1)} ms (median of 15; goal <= ${GOAL_CHANGE_MS} ms: ${worst <= GOAL_CHANGE_MS ? 'met' : 'missed'})`);
      console.log(`  kernel floor at N=${n} (bare iptables-restore into a live bucket): add one DNAT ${f.add.toFixed(1)} ms, delete it ${f.del.toFixed(1)} ms, empty ${f.empty.toFixed(1)} ms`);
    }

    // Memory: a fresh process holding 1,000 published ports (the daemon's proxy part alone).
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--memory-only'], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`memory run failed: ${child.stderr}`);
    console.log(child.stdout.trim());
  } finally {
    for (const ns of made) dropNs(ns);
  }
}

async function memoryOnly(): Promise<void> {
  const ns = await makeNs('mem');
  try {
    await populate(ns, 1_000);
    const rss = process.memoryUsage().rss / 2 ** 20;
    const heap = process.memoryUsage().heapUsed / 2 ** 20;
    console.log(`memory with 1,000 published ports (+100 services x 10 backends): rss ${rss.toFixed(0)} MB, heap ${heap.toFixed(0)} MB (goal < ${GOAL_RSS_MB} MB: ${rss < GOAL_RSS_MB ? 'met' : 'missed'})`);
  } finally {
    dropNs(ns);
  }
}

await (process.argv.includes('--memory-only') ? memoryOnly() : main());
