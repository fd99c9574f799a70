// Measures CNI VERSION start-up: a compiled Node entry using only the fast path, the same
// answer through the full runner, bare `node -e 0`, and the Go reference bridge plugin.
// Run: node --import=tsx test/cni-protocol/bench-version.ts [rounds]. Not part of CI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rounds = Number(process.argv[2] ?? 60);
const input = '{"cniVersion":"1.0.0"}';

function timeOnce(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 || (cmd !== process.execPath || args[0] !== '-e') && !r.stdout.includes('supportedVersions')) {
    throw new Error(`${cmd} ${args.join(' ')}: status ${r.status} ${r.stdout} ${r.stderr}`);
  }
  return ms;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'tsot-cni-bench-'));
  try {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const files = ['plugins/cni/fast-entry.ts', 'plugins/cni/skel.ts', 'plugins/cni/delegate.ts'].map((f) => join(root, f));
    const c = spawnSync(process.execPath, [tsc, '--outDir', out, '--rootDir', root, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', join(root, 'node_modules/@types'), '--skipLibCheck', '--strict', ...files], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`tsc failed: ${c.stdout}${c.stderr}`);
    await writeFile(join(out, 'package.json'), '{"type":"module"}');
    await writeFile(join(out, 'heavy.js'), "import { runPlugin } from './plugins/cni/skel.js';\nawait runPlugin({ name: 'b', about: 'b', handlers: {} });\n");
    await writeFile(join(out, 'fast-entry-bin.js'), "import { answerVersionIfAsked } from './plugins/cni/fast-entry.js';\nawait answerVersionIfAsked();\nawait import('./heavy.js');\n");
    await writeFile(join(out, 'runner-bin.js'), "await import('./heavy.js');\n");
    const cases: Array<[string, string, string[]]> = [
      ['node -e 0 (baseline)', process.execPath, ['-e', '0']],
      ['tsoverlay entry, fast path', process.execPath, [join(out, 'fast-entry-bin.js')]],
      ['tsoverlay entry, full runner', process.execPath, [join(out, 'runner-bin.js')]],
    ];
    if (existsSync('/usr/lib/cni/bridge')) cases.push(['Go reference bridge', '/usr/lib/cni/bridge', []]);
    const samples = new Map<string, number[]>(cases.map(([n]) => [n, []]));
    for (const [, cmd, args] of cases) timeOnce(cmd, args); // warm the page cache
    for (let i = 0; i < rounds; i++) for (const [n, cmd, args] of cases) samples.get(n)!.push(timeOnce(cmd, args));
    console.log(`CNI VERSION start-up, ${rounds} interleaved rounds (ms):`);
    for (const [n, xs] of samples) console.log(`  ${n.padEnd(32)} p50 ${pct(xs, 50).toFixed(1).padStart(6)}  p95 ${pct(xs, 95).toFixed(1).padStart(6)}  min ${Math.min(...xs).toFixed(1).padStart(6)}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

await main();
