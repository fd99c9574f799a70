// `tsoverlay install cni --dir DIR`: put the five CNI executables into a CNI bin directory —
// copies of the compiled launcher (dist/bin/cni-launcher, bin/launcher/) plus
// tsoverlay-launcher.conf naming Node and dist/, or, without a built launcher, symlinks to
// dist/bin/*.js (Node resolves the real path, so "type": "module" applies) — and example conflists.
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DAEMON_SOCKET, DEFAULT_STORE_URL } from './context.js';

/** The executables `install cni` writes (DESIGN.md "Names users see"). */
export const CNI_EXECUTABLES = ['tsbridge', 'tsoverlay', 'tshost', 'tsipam', 'tsportmap'] as const;

export interface InstallCniOptions {
  /** The built tree holding bin/<name>.js (default: this package's dist/). */
  distDir?: string;
  /** Where the example conflists go (default `<dir>/../net.d-examples`); `false` writes none. */
  confDir?: string | false;
  /** Store URL written into the examples (default the embedded SQLite). */
  store?: string;
  /** Install the compiled launcher when dist/bin/cni-launcher exists (default true); false: the Node entries. */
  launcher?: boolean;
  /** The Node executable the launcher falls back to (default: the one running this). */
  nodePath?: string;
}

/** The file next to installed launchers that says where Node and the JS entries are. */
export const LAUNCHER_CONF = 'tsoverlay-launcher.conf';

export interface InstallCniResult {
  /** Each executable: the file written and the JS entry it runs (a symlink to it, or a launcher copy). */
  plugins: Array<{ name: string; path: string; target: string; kind: 'launcher' | 'symlink' }>;
  /** Example conflists written. */
  examples: string[];
}

/** The package's dist/ directory, from source (tsx) or from the compiled module. */
export function defaultDistDir(): string {
  const up = fileURLToPath(new URL('../../', import.meta.url));
  return existsSync(join(up, 'bin', 'tsipam.js')) ? resolve(up) : join(up, 'dist');
}

/** An error with the project's error shape (a CLI prints `message`). */
function installError(message: string, code = 'install-failed'): Error {
  return Object.assign(new Error(message), { code, kind: 'bad-request' as const, retryable: false });
}

/** Replace `path` atomically (a runtime never sees it missing) by what `make(tmp)` writes. */
async function replaceAtomically(path: string, make: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tsoverlay-${process.pid}`;
  await rm(tmp, { force: true });
  await make(tmp);
  await rename(tmp, path);
}

/** `node=…` and `dist=…` lines for tsoverlay-launcher.conf (absolute paths, one line each). */
function launcherConf(nodePath: string, distDir: string): string {
  for (const p of [nodePath, distDir]) {
    if (!isAbsolute(p) || /[\n\r\0]/.test(p)) throw installError(`launcher paths must be absolute single-line paths: ${JSON.stringify(p)}`);
  }
  return `# Written by tsoverlay install cni: where the CNI launchers find Node and the JS entries.\nnode=${nodePath}\ndist=${distDir}\n`;
}

/**
 * Install the CNI executables into `dir` (created when missing) and example conflists:
 * launcher copies when dist/bin/cni-launcher was built (and `launcher` is not false),
 * else symlinks to the Node entries. Throws (code `install-failed`, kind bad-request) when dist/ lacks a built executable:
 * run `npm run build` first.
 */
export async function installCni(dir: string, opts: InstallCniOptions = {}): Promise<InstallCniResult> {
  if (!isAbsolute(dir)) dir = resolve(dir);
  const distDir = resolve(opts.distDir ?? defaultDistDir());
  const targets = CNI_EXECUTABLES.map((name) => ({ name, target: join(distDir, 'bin', `${name}.js`) }));
  const missing = targets.filter((t) => !existsSync(t.target)).map((t) => t.target);
  if (missing.length) throw installError(`not built: ${missing.join(', ')} (run "npm run build" first)`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const launcher = join(distDir, 'bin', 'cni-launcher');
  const useLauncher = opts.launcher !== false && existsSync(launcher);
  if (useLauncher) {
    const conf = launcherConf(opts.nodePath ?? process.execPath, distDir);
    await replaceAtomically(join(dir, LAUNCHER_CONF), (tmp) => writeFile(tmp, conf, { mode: 0o644 }));
  }
  const plugins: InstallCniResult['plugins'] = [];
  for (const { name, target } of targets) {
    // The target must be executable for the runtime's exec to follow a symlink (and for Node entries run by hand).
    const mode = (await stat(target)).mode;
    if ((mode & 0o111) !== 0o111) await chmod(target, mode | 0o755);
    const path = join(dir, name);
    // A copy, not a symlink: the launcher finds tsoverlay-launcher.conf next to itself, and DIR may be anywhere.
    await replaceAtomically(path, (tmp) => (useLauncher ? copyFile(launcher, tmp).then(() => chmod(tmp, 0o755)) : symlink(target, tmp)));
    plugins.push({ name, path, target, kind: useLauncher ? 'launcher' : 'symlink' });
  }
  if (!useLauncher) await rm(join(dir, LAUNCHER_CONF), { force: true });
  const examples: string[] = [];
  if (opts.confDir !== false) {
    const confDir = resolve(opts.confDir ?? join(dirname(dir), 'net.d-examples'));
    await mkdir(confDir, { recursive: true, mode: 0o755 });
    for (const [file, conflist] of Object.entries(exampleConflists(opts.store ?? DEFAULT_STORE_URL))) {
      const path = join(confDir, file);
      await writeFile(path, JSON.stringify(conflist, null, 2) + '\n', { mode: 0o644 });
      examples.push(path);
    }
  }
  return { plugins, examples };
}

/** Example conflists by file name (the same shapes as examples/cni/). */
export function exampleConflists(store: string = DEFAULT_STORE_URL): Record<string, object> {
  const daemonSocket = DEFAULT_DAEMON_SOCKET;
  return {
    '10-tsbridge.conflist': {
      cniVersion: '1.0.0',
      name: 'tsbridge',
      plugins: [
        {
          type: 'tsbridge', bridge: 'tsbr0', isGateway: true, ipMasq: true, hairpinMode: true, store, daemonSocket,
          ipam: { type: 'tsipam', ranges: [[{ subnet: '10.89.0.0/24', gateway: '10.89.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'tsportmap', capabilities: { portMappings: true }, store, daemonSocket },
      ],
    },
    '20-tsoverlay.conflist': {
      cniVersion: '1.0.0',
      name: 'tsoverlay',
      plugins: [
        { type: 'tsoverlay', store: 'etcd://127.0.0.1:2379', daemonSocket, ipam: { type: 'tsipam', ranges: [[{ subnet: '10.90.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] } },
        { type: 'tsportmap', capabilities: { portMappings: true }, store: 'etcd://127.0.0.1:2379', daemonSocket },
      ],
    },
    '30-tshost.conflist': {
      cniVersion: '1.0.0',
      name: 'tshost',
      plugins: [{ type: 'tshost', store, daemonSocket }],
    },
  };
}
