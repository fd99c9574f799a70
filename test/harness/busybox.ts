// A minimal container root filesystem made from Debian's busybox-static (no registry
// is reachable in tests): /bin/busybox, applet links, passwd/group and the files
// podman bind-mounts over. Busybox 1.35 limits: `wget -T` crashes, `nc` has no -u.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markOwned } from './engine-sandbox.js';
import { HarnessError } from './harness-error.js';
import { readProc } from './proc.js';

/** The busybox-static binary (package busybox-static). */
export const BUSYBOX_BIN = '/bin/busybox';

/** Applets linked into /bin of every rootfs this module makes. */
export const BUSYBOX_APPLETS = [
  'sh', 'ash', 'ping', 'ping6', 'ip', 'nslookup', 'wget', 'nc', 'httpd', 'sleep', 'cat', 'echo', 'ls',
  'ifconfig', 'route', 'hostname', 'true', 'false', 'env', 'grep', 'sed', 'awk', 'ps', 'kill', 'mkdir',
  'rm', 'cp', 'mv', 'touch', 'head', 'tail', 'wc', 'date', 'arp', 'netstat', 'traceroute', 'id', 'uname',
  'test', '[', 'printf', 'seq', 'timeout', 'tee', 'xargs', 'mount', 'umount', 'arping', 'nproc',
] as const;

const LAYOUT_VERSION = '1';

/**
 * Build a busybox rootfs at `dir` (created; must not exist yet or be empty).
 * The tree is complete before this returns; `dir` can go straight to
 * `podman run --rootfs` or through `tar -C dir -c .` into `docker import`.
 */
export function makeBusyboxRootfs(dir: string): string {
  if (!existsSync(BUSYBOX_BIN)) {
    throw new HarnessError('harness-no-busybox', 'unavailable', `${BUSYBOX_BIN} missing: install busybox-static`);
  }
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'var/www', 'var/run']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  copyFileSync(BUSYBOX_BIN, join(dir, 'bin/busybox'));
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  // Mount points podman creates on first use: making them here keeps the tree stable.
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) writeFileSync(join(dir, f), '');
  symlinkSync('/proc/mounts', join(dir, 'etc/mtab'));
  writeFileSync(join(dir, 'var/www/index.html'), 'tsoverlay busybox\n');
  writeFileSync(join(dir, '.tsot-rootfs'), LAYOUT_VERSION);
  return dir;
}

/**
 * A busybox rootfs shared by everything in this process, built once under
 * /tmp/tsot-busybox-<pid>-<start>, removed when the process exits (or swept by
 * `sweepStaleEngines` if it was killed). Containers may write into it (podman --rootfs is not copy-on-write):
 * a test that writes files should make its own with `makeBusyboxRootfs`.
 */
export function busyboxRootfs(): string {
  const start = readProc(process.pid)?.startTime ?? '0';
  const dir = `/tmp/tsot-busybox-${process.pid}-${start}`;
  const root = join(dir, 'rootfs');
  if (existsSync(join(root, '.tsot-rootfs')) && readFileSync(join(root, '.tsot-rootfs'), 'utf8') === LAYOUT_VERSION) {
    return root;
  }
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    // First build in this process: remove it when the process ends (a crash leaves it to the sweeper).
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  markOwned(dir);
  // Build beside, then rename: a half-built tree is never visible under `root`.
  const tmp = join(dir, `build-${Date.now()}`);
  makeBusyboxRootfs(tmp);
  rmSync(root, { recursive: true, force: true });
  renameSync(tmp, root);
  return root;
}
