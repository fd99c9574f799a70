// Part of bench/ipam.ts: CNI IPAM ADD+DEL latency, our tsipam executable vs the reference
// host-local (Debian containernetworking-plugins), same range, called the same way (one
// process per call, interleaved). tsipam runs standalone on a SQLite store (no daemon).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pct } from './stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const HOST_LOCAL = '/usr/lib/cni/host-local';

function call(argv: string[], env: Record<string, string>, stdin: string): Promise<{ code: number; out: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, out, ms: performance.now() - t0 }));
    c.stdin.on('error', () => {});
    c.stdin.end(stdin);
  });
}


/** Print ADD and DEL p50/p95 for both plugins and the ratios; rounds interleaved. */
export async function cniIpamLatency(rounds = 20): Promise<void> {
  const ours = join(ROOT, 'dist', 'bin', 'tsipam.js');
  const argv = existsSync(ours) ? [process.execPath, ours] : [process.execPath, '--import=tsx', join(ROOT, 'bin', 'tsipam.ts')];
  const dir = mkdtempSync(join(tmpdir(), 'tsob-ipamcni-'));
  const ns = `tsob-ipam-${process.pid.toString(36)}`;
  await call(['ip', 'netns', 'add', ns], {}, '');
  try {
    const netns = `/var/run/netns/${ns}`;
    const range = { subnet: '10.123.0.0/16' };
    const confs = {
      tsipam: JSON.stringify({ cniVersion: '1.0.0', name: 'benchnet', type: 'tsipam', ipam: { type: 'tsipam', store: `sqlite://${join(dir, 'store.db')}`, daemonSocket: join(dir, 'no-daemon.sock'), ranges: [[range]] } }),
      'host-local': JSON.stringify({ cniVersion: '1.0.0', name: 'benchnet', type: 'bridge', ipam: { type: 'host-local', dataDir: join(dir, 'host-local'), ranges: [[range]] } }),
    };
    const times: Record<string, { add: number[]; del: number[] }> = { tsipam: { add: [], del: [] }, 'host-local': { add: [], del: [] } };
    for (let i = 0; i < rounds; i++) {
      for (const name of ['tsipam', 'host-local'] as const) {
        const env = { CNI_CONTAINERID: `bench${i}`, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
        const exe = name === 'tsipam' ? argv : [HOST_LOCAL];
        const add = await call(exe, { ...env, CNI_COMMAND: 'ADD' }, confs[name]);
        if (add.code !== 0) throw new Error(`${name} ADD failed: ${add.out}`);
        const del = await call(exe, { ...env, CNI_COMMAND: 'DEL' }, confs[name]);
        if (del.code !== 0) throw new Error(`${name} DEL failed: ${del.out}`);
        times[name]!.add.push(add.ms);
        times[name]!.del.push(del.ms);
      }
    }
    console.log(`\nCNI IPAM ADD/DEL latency, ${rounds} rounds interleaved (tsipam standalone on SQLite, ${argv.length === 2 ? 'compiled dist/' : 'tsx'}):`);
    for (const verb of ['add', 'del'] as const) {
      const o = times.tsipam![verb];
      const r = times['host-local']![verb];
      console.log(
        `  ${verb.toUpperCase()}: tsipam p50 ${pct(o, 50).toFixed(1)} ms p95 ${pct(o, 95).toFixed(1)} ms | host-local p50 ${pct(r, 50).toFixed(1)} ms p95 ${pct(r, 95).toFixed(1)} ms | ratio p50 ${(pct(o, 50) / pct(r, 50)).toFixed(2)}x`,
      );
    }
  } finally {
    await call(['ip', 'netns', 'delete', ns], {}, '');
    rmSync(dir, { recursive: true, force: true });
  }
}
