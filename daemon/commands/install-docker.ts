// `tsoverlay install docker --dir DIR`: writes, into DIR only, an example systemd unit for
// `tsoverlay daemon`, Docker plugin spec files (tsbridge, tsoverlay, tshost, tsipam → unix sockets
// in the plugin dir) and a README snippet saying where each goes. Installs nothing system-wide.
import { lstatSync, mkdirSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

/** The Docker plugin names the daemon serves (DESIGN.md "Names users see"). */
export const DOCKER_PLUGINS = ['tsbridge', 'tsoverlay', 'tshost', 'tsipam'] as const;

export const INSTALL_DEFAULTS = Object.freeze({
  pluginDir: '/run/docker/plugins',
  socket: '/run/tsoverlay/tsoverlay.sock',
  execPath: '/usr/local/bin/tsoverlay',
  stateDir: '/var/lib/tsoverlay',
});

export interface InstallDockerOptions {
  /** Where the files are written (created when missing). */
  dir: string;
  /** Where the daemon puts its plugin sockets (default /run/docker/plugins). */
  pluginDir?: string;
  /** The daemon's local API socket (default /run/tsoverlay/tsoverlay.sock). */
  socket?: string;
  /** The `tsoverlay` executable the unit starts (default /usr/local/bin/tsoverlay, where `npm install -g` puts it). */
  execPath?: string;
  /** --state-dir for the unit (default /var/lib/tsoverlay). */
  stateDir?: string;
  /** --store for the unit (default: the daemon's, SQLite in the state dir). */
  store?: string;
}

export interface InstallDockerResult {
  /** Absolute paths written, in order. */
  files: string[];
}

export class InstallError extends Error {
  readonly kind = 'bad-request';
  readonly retryable = false;
  constructor(
    readonly code: 'invalid-path' | 'unsafe-target',
    message: string,
  ) {
    super(message);
  }
}

// Paths go into a systemd command line and spec files verbatim: no spaces, quotes, %, \ or controls.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;
const SAFE_URL = /^(sqlite|etcds?):\/\/[A-Za-z0-9._/@+:,=&?[\]-]*$/;

function absPath(field: string, v: string): string {
  if (!SAFE_PATH.test(v) || v.split('/').includes('..')) {
    throw new InstallError('invalid-path', `${field}: expected an absolute path of [A-Za-z0-9._/@+-] without "..", got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The systemd unit text (pure). */
export function systemdUnit(o: Required<Omit<InstallDockerOptions, 'dir' | 'store'>> & { store?: string }): string {
  const args = ['daemon', '--state-dir', o.stateDir, '--plugin-dir', o.pluginDir, '--socket', o.socket];
  if (o.store) args.push('--store', o.store);
  return `# Example unit for the tsoverlay daemon, written by \`tsoverlay install docker\`.
# Install: cp tsoverlay.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now tsoverlay
[Unit]
Description=tsoverlay container networking daemon (Docker plugins tsbridge, tsoverlay, tshost, tsipam)
Wants=network-online.target
After=network-online.target
# The engine finds the plugins at start, so containers with restart policies come back on our networks.
Before=docker.service

[Service]
Type=simple
ExecStart=${o.execPath} ${args.join(' ')}
# SIGTERM stops the daemon without tearing down links or rules; the next start reconciles.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=20
Restart=on-failure
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/** A Docker plugin spec file: the URL of the plugin's socket (pure). */
export function pluginSpec(pluginDir: string, name: string): string {
  return `unix://${join(pluginDir, `${name}.sock`)}\n`;
}

function readme(o: { pluginDir: string; socket: string; execPath: string }): string {
  const specNote =
    o.pluginDir === INSTALL_DEFAULTS.pluginDir
      ? 'The sockets are in `/run/docker/plugins`, where the engine looks first, so the spec files are optional.'
      : `The sockets are in \`${o.pluginDir}\`, which the engine does not search: install the spec files.`;
  return `# tsoverlay with Docker

Files written by \`tsoverlay install docker\`:

| file | goes to |
|---|---|
| \`tsoverlay.service\` | \`/etc/systemd/system/tsoverlay.service\` |
${DOCKER_PLUGINS.map((n) => `| \`plugins/${n}.spec\` | \`/etc/docker/plugins/${n}.spec\` |`).join('\n')}

${specNote}

\`\`\`sh
cp tsoverlay.service /etc/systemd/system/
mkdir -p /etc/docker/plugins && cp plugins/*.spec /etc/docker/plugins/
systemctl daemon-reload && systemctl enable --now tsoverlay
${o.execPath} doctor
docker network create -d tsbridge --ipam-driver tsipam --subnet 10.41.0.0/24 web
docker run --rm --net web busybox ip addr
\`\`\`

The daemon serves the plugins on \`${o.pluginDir}/{${DOCKER_PLUGINS.join(',')}}.sock\` and its local API on
\`${o.socket}\`. Stopping it leaves containers' networking in place; a restart reconciles from the store.
`;
}

/** Refuse to write through a symlink (or into a non-directory) that could lead outside DIR. */
function ensureRealDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  if (!lstatSync(path).isDirectory()) throw new InstallError('unsafe-target', `${path} is not a directory (a symlink?): refusing to write through it`);
}

/** Write the files into DIR (and DIR/plugins); nothing outside DIR is touched. */
export function installDocker(opts: InstallDockerOptions): InstallDockerResult {
  const o = {
    pluginDir: absPath('pluginDir', opts.pluginDir ?? INSTALL_DEFAULTS.pluginDir),
    socket: absPath('socket', opts.socket ?? INSTALL_DEFAULTS.socket),
    execPath: absPath('execPath', opts.execPath ?? INSTALL_DEFAULTS.execPath),
    stateDir: absPath('stateDir', opts.stateDir ?? INSTALL_DEFAULTS.stateDir),
    store: opts.store,
  };
  if (o.store !== undefined && !SAFE_URL.test(o.store)) throw new InstallError('invalid-path', `store: not a plain store URL: ${JSON.stringify(o.store)}`);
  if (typeof opts.dir !== 'string' || opts.dir === '') throw new InstallError('invalid-path', 'dir: a directory is required');
  mkdirSync(resolve(opts.dir), { recursive: true, mode: 0o755 });
  const base = realpathSync(resolve(opts.dir));
  const plan: [string, string][] = [
    ['tsoverlay.service', systemdUnit(o)],
    ...DOCKER_PLUGINS.map((n): [string, string] => [join('plugins', `${n}.spec`), pluginSpec(o.pluginDir, n)]),
    ['README.md', readme(o)],
  ];
  ensureRealDir(join(base, 'plugins'));
  const files: string[] = [];
  for (const [rel, text] of plan) {
    const target = join(base, rel);
    const back = relative(base, target);
    if (back.startsWith('..') || back.startsWith(sep)) throw new InstallError('unsafe-target', `${target} is outside ${base}`);
    // Write beside and rename: a symlink at the target is replaced, never followed.
    const tmp = `${target}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
    renameSync(tmp, target);
    files.push(target);
  }
  return { files };
}
