// `tsoverlay install cni --dir DIR`: put the five CNI executables into a CNI bin directory
// as symlinks to the built dist/bin/*.js (Node resolves the real path, so the package's
// "type": "module" applies) and write example conflists next to it.
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
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
}

export interface InstallCniResult {
  /** Each executable: the symlink written and the file it points to. */
  plugins: Array<{ name: string; path: string; target: string }>;
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

/** Replace `path` by a symlink to `target` atomically (a runtime never sees it missing). */
async function replaceWithSymlink(path: string, target: string): Promise<void> {
  const tmp = `${path}.tsoverlay-${process.pid}`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, path);
}

/**
 * Install the CNI executables into `dir` (created when missing) and example conflists.
 * Throws (code `install-failed`, kind bad-request) when dist/ lacks a built executable:
 * run `npm run build` first.
 */
export async function installCni(dir: string, opts: InstallCniOptions = {}): Promise<InstallCniResult> {
  if (!isAbsolute(dir)) dir = resolve(dir);
  const distDir = resolve(opts.distDir ?? defaultDistDir());
  const targets = CNI_EXECUTABLES.map((name) => ({ name, target: join(distDir, 'bin', `${name}.js`) }));
  const missing = targets.filter((t) => !existsSync(t.target)).map((t) => t.target);
  if (missing.length) throw installError(`not built: ${missing.join(', ')} (run "npm run build" first)`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const plugins: InstallCniResult['plugins'] = [];
  for (const { name, target } of targets) {
    // The symlink's target must be executable for the runtime's exec to follow it.
    const mode = (await stat(target)).mode;
    if ((mode & 0o111) !== 0o111) await chmod(target, mode | 0o755);
    const path = join(dir, name);
    await replaceWithSymlink(path, target);
    plugins.push({ name, path, target });
  }
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
