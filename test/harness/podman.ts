// Podman 4.3 with its CNI backend, per test, inside a host network namespace and a
// private mount/UTS namespace (own /run, so its netns files and runc state stay
// private; own /var/lib/cni cache). Containers run from the busybox rootfs with
// `--rootfs`. stop() removes containers (CNI DEL in the same namespace), then ends
// every process, cgroup, mount and file it made.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from './busybox.js';
import { EngineSandbox, sweepStaleEngines } from './engine-sandbox.js';
import { run, tryRun, type RunOptions, type RunResult } from './exec.js';
import { HarnessError } from './harness-error.js';
import { uniqueId } from './netns.js';
import { mountsUnder, onProcessEnd } from './proc.js';

export interface PodmanOptions {
  /** Path of the host network namespace podman runs in (`Netns.path`). */
  netns: string;
  /** Directories holding CNI plugin executables (e.g. `['/usr/lib/cni']`). */
  cniPluginDirs: string[];
  /** Working directory (removed by stop); default a new `/tmp/tsot-podman-*`. */
  dir?: string;
  /** Hostname in the private UTS namespace; default `tsot-<id>`. */
  hostname?: string;
  /** More bind mounts into podman's namespace (its /run is private: bind sockets there if a plugin needs them). */
  binds?: Array<{ source: string; target: string }>;
  /** Put containers under cgroup /tsot-<id> (adds `--cgroup-parent` to `run`/`create`); default true. */
  ownCgroup?: boolean;
}

const NET_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const SAFE_PATH = /^\/[A-Za-z0-9_./+-]*$/;

/** One podman "host". Create with `setupPodman`; always `await stop()` (e.g. in `t.teardown`). */
export class PodmanHost {
  readonly networkConfigDir: string;
  /** The busybox rootfs to pass after `--rootfs` (every other flag goes before it). */
  readonly rootfs: string;
  private stopping: Promise<void> | undefined;
  private readonly unregisterExit: () => void;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly netns: string,
    private readonly sandbox: EngineSandbox,
    private readonly ownCgroup: boolean,
  ) {
    this.networkConfigDir = join(dir, 'net.d');
    this.rootfs = busyboxRootfs();
    this.unregisterExit = onProcessEnd(() => this.sandbox.destroySync());
  }

  /** The engine's private mount namespace ("mnt:[…]"): every process in it is the engine's. */
  get mntNs(): string {
    return this.sandbox.mntNs;
  }

  /** The process holding the engine's namespaces (pin its namespace with `NamespacePin.of`). */
  get holderPid(): number {
    return this.sandbox.holderPid;
  }

  /** cgroup parent of this host's containers (when `ownCgroup`). */
  get cgroup(): string {
    return this.sandbox.cgroup;
  }

  /** `podman ARGS` in this host's namespaces and configuration → stdout; throws with stderr. */
  podman(args: string[], opts: RunOptions = {}): Promise<string> {
    return run('nsenter', [...this.sandbox.enterArgs(this.netns), 'podman', ...this.withCgroup(args)], { ...opts, env: this.env() });
  }

  /** As `podman`, resolving with code/stdout/stderr instead of throwing. */
  tryPodman(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return tryRun('nsenter', [...this.sandbox.enterArgs(this.netns), 'podman', ...this.withCgroup(args)], { ...opts, env: this.env() });
  }

  /**
   * Write `<networkConfigDir>/<name>.conflist`. `conf.name` is set to `name`
   * (podman names networks by it). Podman drops a conflist silently when a plugin
   * does not list its cniVersion: check `podman network ls` if a network is missing.
   */
  writeConflist(name: string, conf: Record<string, unknown>): string {
    if (!NET_NAME.test(name)) throw new HarnessError('harness-bad-network-name', 'bad-request', `network name ${JSON.stringify(name)} must match ${NET_NAME}`);
    const file = join(this.networkConfigDir, `${name}.conflist`);
    writeFileSync(file, `${JSON.stringify({ ...conf, name }, null, 2)}\n`);
    return file;
  }

  /**
   * nsenter arguments (before `--`) that enter this host's private mount/UTS namespace and its
   * network namespace: for a process that must see podman's /run, e.g. the daemon serving the
   * CNI hand-off (the CNI_NETNS paths podman passes exist only in there).
   */
  enterArgs(): string[] {
    return this.sandbox.enterArgs(this.netns).filter((a) => a !== '--');
  }

  /** Pid of a running container's init (for `nsenter --net=/proc/PID/ns/net`). */
  async containerPid(name: string): Promise<number> {
    const pid = Number((await this.podman(['inspect', '-f', '{{.State.Pid}}', name])).trim());
    if (!(pid > 0)) throw new HarnessError('harness-container-not-running', 'conflict', `container ${name} is not running`);
    return pid;
  }

  /** `podman exec NAME ARGS` → stdout. */
  exec(name: string, args: string[], opts: RunOptions = {}): Promise<string> {
    return this.podman(['exec', name, ...args], opts);
  }

  /** The address podman recorded for `name` on network `net` (from the CNI result). */
  async containerIP(name: string, net: string): Promise<string> {
    const out = await this.podman(['inspect', '-f', `{{json .NetworkSettings.Networks}}`, name]);
    const nets = JSON.parse(out) as Record<string, { IPAddress?: string }>;
    const ip = nets[net]?.IPAddress;
    if (!ip) throw new HarnessError('harness-no-address', 'not-found', `container ${name} has no address on ${net}`);
    return ip;
  }

  /**
   * `podman rm -af -t 0` (CNI DEL runs here, in the right namespace), then every
   * process, cgroup, mount and file of this host goes. Idempotent.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  /** Alias of `stop()`. */
  cleanup(): Promise<void> {
    return this.stop();
  }

  private withCgroup(args: string[]): string[] {
    const [verb, ...rest] = args;
    if (!this.ownCgroup || (verb !== 'run' && verb !== 'create')) return args;
    // Ours goes first: a --cgroup-parent the caller passes later wins.
    return [verb, `--cgroup-parent=/${this.sandbox.cgroup}`, ...rest];
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      CONTAINERS_CONF: join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
    };
  }

  private async doStop(): Promise<void> {
    this.unregisterExit();
    let first: unknown;
    await this.tryPodman(['rm', '-af', '-t', '0'], { timeoutMs: 30_000 }).catch(() => undefined);
    try {
      await this.sandbox.destroy();
    } catch (err) {
      first = err;
    }
    for (const m of mountsUnder(this.dir).reverse()) await tryRun('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
    if (first) throw first;
  }
}

function toml(values: string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
}

/** containers.conf and storage.conf for one host, all state under `dir`. */
function writeConfigs(dir: string, cniPluginDirs: string[]): void {
  for (const p of [dir, ...cniPluginDirs]) {
    if (!SAFE_PATH.test(p)) throw new HarnessError('harness-bad-path', 'bad-request', `path ${JSON.stringify(p)} has characters the config cannot hold`);
  }
  writeFileSync(
    join(dir, 'containers.conf'),
    [
      '[containers]',
      // This machine lacks CAP_SYS_RESOURCE: limits above the hard limit fail.
      'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
      // conmon stays in the caller's cgroup instead of the shared /libpod_parent/conmon.
      'cgroups = "no-conmon"',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ${toml(cniPluginDirs)}`,
      `network_config_dir = ${JSON.stringify(join(dir, 'net.d'))}`,
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      // File locks: the shm default collides with /dev/shm/libpod_lock of other podman users.
      'lock_type = "file"',
      'runtime = "runc"',
      // Not static_dir/volume_path: the cleanup process conmon spawns derives them from --root.
      `tmp_dir = ${JSON.stringify(join(dir, 'tmp'))}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'storage.conf'),
    ['[storage]', 'driver = "overlay"', `runroot = ${JSON.stringify(join(dir, 'runroot'))}`, `graphroot = ${JSON.stringify(join(dir, 'root'))}`, ''].join('\n'),
  );
}

/**
 * Prepare podman in the network namespace `opts.netns`: configuration, private
 * namespace, and a check that podman answers. On failure nothing is left behind.
 */
export async function setupPodman(opts: PodmanOptions): Promise<PodmanHost> {
  if (!existsSync(opts.netns)) throw new HarnessError('harness-no-netns', 'not-found', `network namespace ${opts.netns} does not exist`);
  await sweepStaleEngines();
  const id = uniqueId(4);
  const dir = opts.dir ?? mkdtempSync('/tmp/tsot-podman-');
  let sandbox: EngineSandbox | undefined;
  try {
    for (const d of ['net.d', 'tmp', 'runroot', 'root', 'cni']) mkdirSync(join(dir, d), { recursive: true });
    writeConfigs(dir, opts.cniPluginDirs);
    sandbox = await EngineSandbox.create({
      dir,
      hostname: opts.hostname ?? `tsot-${id}`,
      cgroup: `tsot-${id}`,
      mounts: [
        { type: 'tmpfs', target: '/run' },
        // The CNI cache (results, host-local leases) would otherwise be machine-wide.
        { type: 'bind', source: join(dir, 'cni'), target: '/var/lib/cni' },
        ...(opts.binds ?? []).map((b) => ({ type: 'bind' as const, ...b })),
      ],
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const host = new PodmanHost(id, dir, opts.netns, sandbox, opts.ownCgroup ?? true);
  try {
    await host.podman(['info', '--format', '{{.Host.NetworkBackend}}'], { timeoutMs: 30_000 });
    return host;
  } catch (err) {
    await host.stop().catch(() => undefined);
    throw err;
  }
}
