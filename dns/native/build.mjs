#!/usr/bin/env node
// Compiles dns/native/udp-batch.c to dist/dns/native/udp-batch.node (run by `npm run build`), or to
// the path given as the first argument (tests). No compiler or no Node headers: a warning, no
// addon, exit 0 — the DNS server then uses node:dgram. A compile error is an error (exit 1).
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileInto, findCompiler, say } from '../../bin/c-build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = join(root, 'dns', 'native', 'udp-batch.c');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'dns', 'native', 'udp-batch.node'));
const include = process.env.NODE_INCLUDE_DIR ?? '/usr/include/node';

/** A compiler that can build against libc and the Node-API headers, or why there is none. */
function compiler() {
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'uv.h'))) return { why: `no Node-API headers in ${include} (libnode-dev / nodejs headers)` };
  const probe = '#include <sys/socket.h>\n#include <node_api.h>\n#include <uv.h>\nint f(void) { return 0; }\n';
  return findCompiler(probe, ['-I', include], 'cannot compile against the C library and Node-API headers');
}

const { cc, why } = compiler();
if (!cc) {
  rmSync(out, { force: true });
  say(`WARNING: ${why}: the batched UDP addon for DNS is NOT built; the DNS server uses node:dgram (slower).`);
} else {
  compileInto(cc, ['-O2', '-shared', '-fPIC', '-Wall', '-Wextra', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2', '-I', include], source, out);
}
