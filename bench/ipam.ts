// Benchmark of ipam/: allocation throughput (a) 3 simulated hosts (one process each) × 16
// concurrent workers against a real 3-member etcd, (b) 16 processes of one host on the embedded
// SQLite store. Prints allocs/s, duplicates, and the ratio to the 2,000 allocs/s goal.
// Run: npx tsx bench/ipam.ts [--seconds N]. The etcd cluster and the SQLite file are its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ipam } from '../ipam/ipam.js';
import { ownerForCni } from '../ipam/records.js';
import { openStore } from '../store/open.js';
import { startEtcdCluster } from '../test/harness/etcd.js';
import { cniIpamLatency } from './ipam-cni.js';

const GOAL = 2000;
const argSeconds = process.argv.indexOf('--seconds');
const SECONDS = argSeconds > 0 ? Number(process.argv[argSeconds + 1]) : 5;

interface Job {
  url: string;
  poolId: string;
  hostId: string;
  workers: number;
  seconds: number;
  tag: string;
}

interface WorkerResult {
  told: string[];
  errors: Record<string, number>;
  latMs: number[];
}

/** Worker mode: allocate until the time is up, after the parent says go. */
async function worker(job: Job): Promise<void> {
  const store = await openStore(job.url);
  const ipam = new Ipam(store, { hostId: job.hostId });
  await ipam.requestAddress(job.poolId, { owner: ownerForCni('bench', `${job.tag}-warm`, 'eth0') });
  process.stdout.write('ready\n');
  await new Promise((r) => process.stdin.once('data', r));
  const end = Date.now() + job.seconds * 1000;
  const res: WorkerResult = { told: [], errors: {}, latMs: [] };
  let seq = 0;
  await Promise.all(
    Array.from({ length: job.workers }, async () => {
      while (Date.now() < end) {
        const owner = ownerForCni('bench', `${job.tag}-${seq++}`, 'eth0');
        const t0 = performance.now();
        try {
          res.told.push((await ipam.requestAddress(job.poolId, { owner })).address);
          res.latMs.push(performance.now() - t0);
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'error';
          res.errors[code] = (res.errors[code] ?? 0) + 1;
        }
      }
    }),
  );
  await store.close();
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

/** Start the worker processes, release them together, collect their results. */
async function runWorkers(jobs: Job[]): Promise<{ results: WorkerResult[]; seconds: number }> {
  const self = fileURLToPath(import.meta.url);
  const procs = jobs.map((job) => {
    const child = spawn(process.execPath, ['--import=tsx', self, '--worker', JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.startsWith('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`worker exited ${code} before ready`)));
    });
    const done = new Promise<WorkerResult>((resolve, reject) =>
      child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`worker exited ${code}`)))),
    );
    return { child, ready, done };
  });
  try {
    await Promise.all(procs.map((p) => p.ready));
    const t0 = performance.now();
    for (const p of procs) p.child.stdin.end('go\n');
    const results = await Promise.all(procs.map((p) => p.done));
    return { results, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

/** One scenario: a /16 pool, the jobs, then a check of the store against what workers were told. */
async function scenario(name: string, url: string, jobsFor: (poolId: string) => Job[]): Promise<number> {
  const store = await openStore(url);
  try {
    const ipam = new Ipam(store, { hostId: 'bench-admin' });
    const pool = await ipam.requestPool({ space: 'global', cidr: '10.128.0.0/16' });
    const jobs = jobsFor(pool.poolId);
    const { results, seconds } = await runWorkers(jobs);
    const told = results.flatMap((r) => r.told);
    const dup = told.length - new Set(told).size;
    const stored = await ipam.listAllocations(pool.poolId);
    const storedDup = stored.length - new Set(stored.map((s) => s.address)).size;
    const storedSet = new Set(stored.map((s) => s.address));
    const missing = told.filter((a) => !storedSet.has(a)).length;
    const errors: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const lat = results.flatMap((r) => r.latMs);
    const rate = told.length / seconds;
    console.log(`\n${name}`);
    console.log(`  ${told.length} allocations in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} allocs/s (goal ${GOAL}: ratio ${(rate / GOAL).toFixed(2)})`);
    console.log(`  latency p50 ${pct(lat, 50).toFixed(1)} ms, p95 ${pct(lat, 95).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms`);
    console.log(`  duplicates told ${dup}, duplicates stored ${storedDup}, told but not stored ${missing}, stored ${stored.length} (incl. ${jobs.length} warm-up)`);
    console.log(`  errors ${JSON.stringify(errors)}`);
    return rate;
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  console.log(`ipam allocation throughput, ${SECONDS} s per scenario (machine: shared 2 cores)`);
  const cluster = await startEtcdCluster({ members: 3 });
  let etcdRate: number;
  try {
    etcdRate = await scenario('etcd, 3-member cluster: 3 hosts (processes) x 16 concurrent workers', cluster.url, (poolId) =>
      ['A', 'B', 'C'].map((h) => ({ url: cluster.url, poolId, hostId: h, workers: 16, seconds: SECONDS, tag: h })),
    );
  } finally {
    await cluster.stop();
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsob-ipam-'));
  let sqliteRate: number;
  try {
    const url = `sqlite://${join(dir, 'store.db')}`;
    sqliteRate = await scenario('sqlite, one host: 16 processes x 1 worker each (as 16 CNI executables)', url, (poolId) =>
      Array.from({ length: 16 }, (_, i) => ({ url, poolId, hostId: 'h1', workers: 1, seconds: SECONDS, tag: `p${i}` })),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await cniIpamLatency(Number(process.env.IPAM_CNI_ROUNDS ?? 20));
  console.log(`\nsummary: etcd ${etcdRate.toFixed(0)} allocs/s (x${(etcdRate / GOAL).toFixed(2)} of goal), sqlite ${sqliteRate.toFixed(0)} allocs/s (x${(sqliteRate / GOAL).toFixed(2)} of goal)`);
}

const w = process.argv.indexOf('--worker');
if (w > 0) await worker(JSON.parse(process.argv[w + 1]!) as Job);
else await main();
