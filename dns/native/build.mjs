#!/usr/bin/env node
// Compiles dns/native/udp-batch.c to dist/dns/native/udp-batch.node (run by `npm run build`), or to
// the path given as the first argument (tests). No compiler or no Node headers: a warning, no
// addon, exit 0 — the DNS server then uses node:dgram. A compile error is an error (exit 1).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = join(root, 'dns', 'native', 'udp-batch.c');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'dns', 'native', 'udp-batch.node'));
const include = process.env.NODE_INCLUDE_DIR ?? '/usr/include/node';

function say(msg) {
  process.stderr.write(`tsoverlay build: ${msg}\n`);
}

/** The first C compiler on PATH ($CC first) that can compile against libc and Node-API headers. */
function findCompiler() {
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) return { why: `no Node-API headers in ${include} (libnode-dev / nodejs headers)` };
  const probe = '#include <sys/socket.h>\n#include <node_api.h>\n#include <uv.h>\nint f(void) { return 0; }\n';
  let why = 'no C compiler (cc/gcc/clang) found';
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0) continue;
    const r = spawnSync(cc, ['-fsyntax-only', '-I', include, '-x', 'c', '-'], { input: probe, stdio: ['pipe', 'ignore', 'ignore'] });
    if (r.status === 0) return { cc };
    why = `${cc} cannot compile against the C library and Node-API headers`;
  }
  return { why };
}

const { cc, why } = findCompiler();
if (!cc) {
  rmSync(out, { force: true });
  say(`WARNING: ${why}: the batched UDP addon for DNS is NOT built; the DNS server uses node:dgram (slower).`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const args = ['-O2', '-shared', '-fPIC', '-Wall', '-Wextra', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2', '-I', include, '-o', tmp, source];
  const r = spawnSync(cc, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    say(`ERROR: ${cc} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  renameSync(tmp, out);
  say(`built ${out} with ${cc}`);
}
