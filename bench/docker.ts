// Benchmark of the Docker path: `docker run --rm --net NET busybox true` on a tsbridge network
// (with tsipam, served by the real daemon) vs the same on a built-in bridge network, runs
// interleaved in one engine. Prints p50/p95 of each and the ratio (goal ≤ 1.05×; a minimal Node
// remote driver measured 1.20× here). Run: npx tsx bench/docker.ts [--runs N] [--ipam default].
// Everything runs in namespaces of its own (test harness); nothing touches the host's network.
import { startWorld, type World } from '../test/docker/world.js';

const GOAL = 1.05;
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const RUNS = Number(arg('--runs', '30'));
const WARMUP = 3;
/** `--ipam default`: tsbridge with Docker's default IPAM (isolates the network driver's share). */
const IPAM = arg('--ipam', 'tsipam');

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timeRun(w: World, net: string): Promise<number> {
  const t0 = performance.now();
  await w.docker(['run', '--rm', '--net', net, 'busybox:local', 'true']);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const w = await startWorld('bench');
  try {
    await w.docker(['network', 'create', '-d', 'bridge', '--subnet', '10.90.0.0/24', 'builtin']);
    const ipamArgs = IPAM === 'tsipam' ? ['--ipam-driver', 'tsipam'] : [];
    await w.docker(['network', 'create', '-d', 'tsbridge', ...ipamArgs, '--subnet', '10.91.0.0/24', 'ours']);
    const nets = ['builtin', 'ours'] as const;
    const times: Record<(typeof nets)[number], number[]> = { builtin: [], ours: [] };
    for (let i = 0; i < WARMUP; i++) for (const n of nets) await timeRun(w, n);
    for (let i = 0; i < RUNS; i++) {
      // Alternate which goes first so drift and caches hit both alike.
      const order = i % 2 === 0 ? nets : ([...nets].reverse() as unknown as typeof nets);
      for (const n of order) times[n].push(await timeRun(w, n));
    }
    const stats = Object.fromEntries(
      nets.map((n) => {
        const s = [...times[n]].sort((a, b) => a - b);
        return [n, { p50: pct(s, 50), p95: pct(s, 95), mean: s.reduce((a, b) => a + b, 0) / s.length }];
      }),
    ) as Record<(typeof nets)[number], { p50: number; p95: number; mean: number }>;
    const ratio50 = stats.ours.p50 / stats.builtin.p50;
    const ratio95 = stats.ours.p95 / stats.builtin.p95;
    const fmt = (x: number) => x.toFixed(1).padStart(7);
    process.stdout.write(`docker run --rm … true, ${RUNS} interleaved runs each (after ${WARMUP} warm-up), IPAM for tsbridge: ${IPAM}\n`);
    process.stdout.write(`                      p50 ms  p95 ms  mean ms\n`);
    process.stdout.write(`built-in bridge      ${fmt(stats.builtin.p50)} ${fmt(stats.builtin.p95)} ${fmt(stats.builtin.mean)}\n`);
    process.stdout.write(`tsbridge (daemon)    ${fmt(stats.ours.p50)} ${fmt(stats.ours.p95)} ${fmt(stats.ours.mean)}\n`);
    process.stdout.write(`ratio p50 ${ratio50.toFixed(3)}×  p95 ${ratio95.toFixed(3)}×  (goal ≤ ${GOAL}×: ${ratio50 <= GOAL ? 'met' : 'NOT met'})\n`);
    await w.docker(['network', 'rm', 'builtin', 'ours']);
  } finally {
    await w.cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
