// What the two C build steps share (bin/launcher/build.mjs, dns/native/build.mjs): finding a C
// compiler that can build a probe, and compiling to a temporary file renamed into place, so a
// failed build never leaves a half-written output. Spawned with argument arrays only.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/** One line on stderr, prefixed like every build message. */
export function say(msg) {
  process.stderr.write(`tsoverlay build: ${msg}\n`);
}

/**
 * The first C compiler on PATH ($CC first) that compiles `probe` with `flags` (`{ cc }`), or
 * why none does (`{ why }`; `headersWhy` names what is missing when one runs but fails).
 */
export function findCompiler(probe, flags, headersWhy) {
  let why = 'no C compiler (cc/gcc/clang) found';
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) continue;
    if (spawnSync(cc, ['-fsyntax-only', ...flags, '-x', 'c', '-'], { input: probe, stdio: ['pipe', 'ignore', 'ignore'] }).status === 0) return { cc };
    why = `${cc} ${headersWhy}`;
  }
  return { why };
}

/**
 * `cc ...args -o <tmp> source`, then rename to `out` (mode when given). A compile error is
 * reported and exits 1, with the temporary file (and `out` when `removeOnFail`) removed.
 */
export function compileInto(cc, args, source, out, opts = {}) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const all = [...args, '-o', tmp, source];
  const r = spawnSync(cc, all, { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    if (opts.removeOnFail) rmSync(out, { force: true });
    say(`ERROR: ${cc} ${all.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  if (opts.mode !== undefined) chmodSync(tmp, opts.mode);
  renameSync(tmp, out);
  say(`built ${out} with ${cc}`);
}
