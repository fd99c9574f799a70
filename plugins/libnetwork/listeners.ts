// Where plugin HTTP servers listen: a unix socket `<dir>/<name>.sock` (mode 0660, root-owned,
// created privately then renamed into place) or a loopback TCP port announced by a spec file.

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, rename, rm, rmdir, unlink, writeFile, chmod, chown } from 'node:fs/promises';
import { createConnection } from 'node:net';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { PluginError } from './errors.js';

/** One listening endpoint; `close()` stops it and removes what it created. */
export interface Listener {
  /** `unix:///path/name.sock` or `tcp://127.0.0.1:PORT`, as a spec file would hold it. */
  readonly url: string;
  close(): Promise<void>;
}

/** Longest unix socket path the kernel takes (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

/** Names reach file paths: keep them to one safe path segment. */
export function validatePluginName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    throw new PluginError('invalid-plugin-name', 'bad-request', `invalid plugin name ${JSON.stringify(name)}: must be 1..63 characters of [A-Za-z0-9_.-]`);
  }
  return name;
}

function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

function stopServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * False only when nobody listens on the unix socket at `path` (ECONNREFUSED, or it is gone).
 * Anything else counts as alive: a full backlog (EAGAIN), or no answer within 5 s — on a loaded
 * host a timer can fire before the connect is seen, and a live socket must never be taken over.
 */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = createConnection(path);
    const timer = setTimeout(() => finish(true), 5000);
    function finish(alive: boolean) {
      clearTimeout(timer);
      conn.destroy();
      resolve(alive);
    }
    conn.once('connect', () => finish(true));
    conn.once('error', (err: NodeJS.ErrnoException) => finish(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}

/** Remove a stale socket at `path`; refuse a live one or anything that is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return;
  if (!st.isSocket()) {
    throw new PluginError('socket-path-occupied', 'conflict', `${path} exists and is not a socket; not removing it`);
  }
  if (await socketAlive(path)) {
    throw new PluginError('socket-in-use', 'conflict', `another process is serving ${path}`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export interface UnixListenOptions {
  dir: string;
  name: string;
  /** Default 0o660. */
  mode?: number;
  /** Default root:root when running as root; unchanged otherwise. */
  owner?: { uid: number; gid: number };
}

/**
 * Serve `server` on `<dir>/<name>.sock`. The socket is bound inside a private (0700) temporary
 * directory, given its mode and owner, and only then renamed into place, so nobody can connect
 * while it still has the umask's permissions.
 */
export async function listenUnix(server: Server, opts: UnixListenOptions): Promise<Listener> {
  return listenUnixPath(server, join(opts.dir, `${validatePluginName(opts.name)}.sock`), opts);
}

/**
 * Serve `server` on the unix socket `path` the way listenUnix does (private bind, mode and
 * owner set, then renamed into place; a stale socket replaced, a live one refused); for
 * sockets whose path is configured whole, like the daemon's local API.
 */
export async function listenUnixPath(server: Server, path: string, opts: Pick<UnixListenOptions, 'mode' | 'owner'> = {}): Promise<Listener> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new PluginError('socket-path-too-long', 'bad-request', `socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes`);
  }
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await clearStaleSocket(path);
  const tmpDir = await mkdtemp(join(dir, '.tsoverlay-'));
  try {
    const tmpPath = join(tmpDir, 's');
    await listen(server, tmpPath);
    await chmod(tmpPath, opts.mode ?? 0o660);
    const owner = opts.owner ?? (process.getuid?.() === 0 ? { uid: 0, gid: 0 } : undefined);
    if (owner) await chown(tmpPath, owner.uid, owner.gid);
    await rename(tmpPath, path);
  } catch (err) {
    if (server.listening) await stopServer(server);
    throw err;
  } finally {
    await rmdir(tmpDir).catch(() => undefined);
  }
  const { ino } = await lstat(path);
  return {
    url: `unix://${path}`,
    close: async () => {
      await stopServer(server);
      // Remove the socket only if it is still ours (a newer instance may have replaced it).
      const st = await lstat(path).catch(() => undefined);
      if (st?.isSocket() && st.ino === ino) await unlink(path).catch(() => undefined);
    },
  };
}

export interface TcpListenOptions {
  name: string;
  /** A loopback address (default 127.0.0.1): the plugin API has no authentication. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** When set, write `<specDir>/<name>.spec` holding the URL, and remove it on close. */
  specDir?: string;
}

function isLoopback(host: string): boolean {
  return (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

/** Serve `server` on a loopback TCP port (one per plugin name: the protocol has no name in it). */
export async function listenTcp(server: Server, opts: TcpListenOptions): Promise<Listener> {
  const name = validatePluginName(opts.name);
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    throw new PluginError('tcp-not-loopback', 'bad-request', `plugin TCP listener must be on a loopback address, not ${JSON.stringify(host)}`);
  }
  await listen(server, { host, port: opts.port ?? 0 });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let specPath: string | undefined;
  try {
    if (opts.specDir) {
      await mkdir(opts.specDir, { recursive: true, mode: 0o755 });
      specPath = join(opts.specDir, `${name}.spec`);
      const tmp = `${specPath}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, `${url}\n`, { mode: 0o644 });
      await rename(tmp, specPath);
    }
  } catch (err) {
    await stopServer(server);
    throw err;
  }
  return {
    url,
    close: async () => {
      await stopServer(server);
      if (!specPath) return;
      const content = await readFile(specPath, 'utf8').catch(() => '');
      if (content.trim() === url) await rm(specPath, { force: true });
    },
  };
}
