// A Docker engine (Debian docker.io 20.10) per test, inside a host network namespace
// and a private mount/UTS namespace: its own /run and /etc/docker, plugin discovery
// from a directory of the test's choosing, containers under cgroup /tsot-<id>.
// stop() always leaves nothing behind: processes (by pid), mounts, cgroups, files.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackground, type BackgroundProcess } from './background.js';
import { busyboxRootfs } from './busybox.js';
import { pipeCommands, tail, unixGet, waitFor } from './engine-api.js';
import { EngineSandbox, sweepStaleEngines } from './engine-sandbox.js';
import { run, tryRun, type RunOptions, type RunResult } from './exec.js';
import { HarnessError } from './harness-error.js';
import { uniqueId } from './netns.js';
import { mountsUnder, onProcessEnd } from './proc.js';

export interface DockerdOptions {
  /** Path of the host network namespace dockerd runs in (`Netns.path`). */
  netns: string;
  /** Working directory (removed by stop); default a new `/tmp/tsot-dockerd-*`. */
  dir?: string;
  /**
   * Directory dockerd sees as both /run/docker/plugins (sockets `NAME.sock`) and
   * /etc/docker/plugins (specs `NAME.spec`). Default `<dir>/plugins`. The machine's
   * own plugin directories are never visible to the engine.
   */
  pluginDir?: string;
  /** Extra dockerd flags, e.g. `['--bridge=none']` or `['--cluster-store', 'etcd://…']`. */
  extraArgs?: string[];
  /** Hostname in the engine's UTS namespace; default `tsot-<id>`. */
  hostname?: string;
  /** More bind mounts into the engine's namespace (its /run is private: bind sockets there if needed). */
  binds?: Array<{ source: string; target: string }>;
  /** docker CLI to use; default the Debian one matching the daemon. */
  cli?: string;
  /** Bound on waiting for the API (default 30 s). */
  startTimeoutMs?: number;
}

const DEFAULT_CLI = '/usr/bin/docker';
const PLUGIN_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A running engine. Create with `startDockerd`; always `await stop()` (e.g. in `t.teardown`). */
export class DockerEngine {
  readonly socket: string;
  private stopping: Promise<void> | undefined;
  private readonly unregisterExit: () => void;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly netns: string,
    readonly pluginDir: string,
    readonly hostname: string,
    private readonly sandbox: EngineSandbox,
    private readonly cli: string,
    private daemon: BackgroundProcess | undefined = undefined,
  ) {
    this.socket = join(dir, 'docker.sock');
    this.unregisterExit = onProcessEnd(() => this.stopSync());
  }

  /** dockerd's pid (0 before start). */
  get pid(): number {
    return this.daemon?.pid ?? 0;
  }

  /** The engine's private mount namespace ("mnt:[…]"): every process in it is the engine's. */
  get mntNs(): string {
    return this.sandbox.mntNs;
  }

  /** The process holding the engine's namespaces (pin its namespace with `NamespacePin.of`). */
  get holderPid(): number {
    return this.sandbox.holderPid;
  }

  /** cgroup parent of this engine's containers (in every hierarchy). */
  get cgroup(): string {
    return this.sandbox.cgroup;
  }

  /** dockerd's log so far. */
  log(): string {
    return this.daemon?.log() ?? '';
  }

  /** How many times `docker`/`start` retried after the engine's set-key hook race. */
  hookRaces = 0;

  /**
   * `docker -H <socket> ARGS`; resolves with stdout, throws with stderr on failure.
   *
   * dockerd 20.10's own prestart hook (libnetwork-setkey) now and then fails with a bare ENOENT
   * ("error running hook #0 … no such file or directory") on a loaded machine, before any
   * plugin of ours is asked anything new; the engine leaves the container created and stopped,
   * and starting it again works. For `start NAME` and `run -d --name NAME …` this retries once
   * with `start NAME`, and for `run --rm …` (removed by the engine) runs it again, writing a
   * line to stderr; anything else (a Join of ours failing answers differently) throws at once.
   */
  async docker(args: string[], opts: RunOptions = {}): Promise<string> {
    const r = await this.tryDocker(args, opts);
    if (r.code === 0) return r.stdout;
    const retry = HOOK_RACE.test(r.stderr) ? hookRaceRetry(args) : undefined;
    if (!retry) throw new Error(`${this.cli} -H unix://${this.socket} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    process.stderr.write(`[harness] dockerd set-key hook race on "docker ${args.slice(0, 4).join(' ')}…": retrying once\n`);
    this.hookRaces++;
    const again = await run(this.cli, ['-H', `unix://${this.socket}`, ...retry], { ...opts, env: this.cliEnv() });
    // `run -d` prints the container id; `start` prints the name.
    return args[0] === 'run' && retry[0] === 'start' ? (await this.docker(['inspect', '-f', '{{.Id}}', retry[1]!])).trim() + '\n' : again;
  }

  /** As `docker`, but resolves with code/stdout/stderr instead of throwing. */
  tryDocker(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return tryRun(this.cli, ['-H', `unix://${this.socket}`, ...args], { ...opts, env: this.cliEnv() });
  }

  /** `docker start NAME` (with `docker`'s one retry on the engine's set-key hook race, logged through onRetry). */
  async start(name: string, onRetry: (msg: string) => void = () => undefined): Promise<void> {
    const first = await this.tryDocker(['start', name]);
    if (first.code === 0) return;
    if (!HOOK_RACE.test(first.stderr)) {
      throw new HarnessError('harness-docker-start', 'internal', `docker start ${name} exited ${first.code}: ${first.stderr}`);
    }
    onRetry(`docker start ${name}: engine set-key hook race, retrying once: ${first.stderr.trim()}`);
    this.hookRaces++;
    await this.docker(['start', name]);
  }

  /** GET an engine API path (e.g. `/containers/ID/json`) and parse the JSON answer. */
  async api<T = unknown>(path: string): Promise<T> {
    const res = await unixGet(this.socket, path, 10_000);
    if (res.status >= 300) throw new HarnessError('harness-docker-api', 'internal', `GET ${path}: ${res.status} ${res.body}`);
    return JSON.parse(res.body) as T;
  }

  /** Import the busybox rootfs as image `tag` (no registry needed). Resolves with the image id. */
  async importBusybox(tag = 'busybox:local'): Promise<string> {
    const rootfs = busyboxRootfs();
    const out = await pipeCommands(['tar', ['-C', rootfs, '-c', '.']], [this.cli, ['-H', `unix://${this.socket}`, 'import', '-', tag]], {
      env: this.cliEnv(),
      timeoutMs: 60_000,
    });
    return out.trim();
  }

  /** Where a plugin named `name` must listen for socket discovery. */
  pluginSocket(name: string): string {
    return join(this.pluginDir, `${checkPluginName(name)}.sock`);
  }

  /** Write `<pluginDir>/<name>.spec` holding `url` (`unix:///abs/path` or `tcp://127.0.0.1:PORT`). */
  writePluginSpec(name: string, url: string): string {
    if (!/^(unix:\/\/\/|tcp:\/\/)\S+$/.test(url)) {
      throw new HarnessError('harness-bad-plugin-url', 'bad-request', `plugin url ${url} must be unix:///path or tcp://host:port`);
    }
    const file = join(this.pluginDir, `${checkPluginName(name)}.spec`);
    writeFileSync(file, `${url}\n`);
    return file;
  }

  /** Pid of a running container's init (for `nsenter --net=/proc/PID/ns/net`). */
  async containerPid(name: string): Promise<number> {
    const pid = Number((await this.docker(['inspect', '-f', '{{.State.Pid}}', name])).trim());
    if (!(pid > 0)) throw new HarnessError('harness-container-not-running', 'conflict', `container ${name} is not running`);
    return pid;
  }

  /** `docker exec NAME ARGS` → stdout. */
  exec(name: string, args: string[], opts: RunOptions = {}): Promise<string> {
    return this.docker(['exec', name, ...args], opts);
  }

  /**
   * Remove containers, stop dockerd (SIGTERM, then SIGKILL), kill whatever is left in
   * its namespace, remove its cgroups and directory. Idempotent; never throws for an
   * engine that is already dead.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  /** Wait until the API answers, bounded; fails with the tail of dockerd's log. */
  async waitReady(timeoutMs: number): Promise<void> {
    let exited = false;
    void this.daemon?.exited.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new HarnessError('harness-dockerd-exited', 'unavailable', `dockerd exited:\n${tail(this.log())}`);
        return unixGet(this.socket, '/_ping', 1_000).then((r) => r.status === 200, () => false);
      },
      timeoutMs,
      () => new HarnessError('harness-dockerd-timeout', 'unavailable', `dockerd not ready after ${timeoutMs} ms:\n${tail(this.log())}`, true),
    );
  }

  /** Start dockerd inside the sandbox (called once by `startDockerd`). */
  launch(extraArgs: string[]): void {
    const args = [
      ...this.sandbox.enterArgs(this.netns),
      'dockerd',
      '--data-root', join(this.dir, 'root'),
      '--exec-root', join(this.dir, 'exec'),
      '--host', `unix://${this.socket}`,
      '--pidfile', join(this.dir, 'docker.pid'),
      '--config-file', join(this.dir, 'daemon.json'),
      '--cgroup-parent', `/${this.sandbox.cgroup}`,
      // Containers still running at shutdown get this long (default 15 s).
      '--shutdown-timeout', '2',
      ...extraArgs,
    ];
    this.daemon = startBackground('nsenter', args, { logFile: join(this.dir, 'dockerd.log') });
  }

  private cliEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(this.dir, 'cli') };
    delete env.DOCKER_HOST;
    delete env.DOCKER_CONTEXT;
    return env;
  }

  private async doStop(): Promise<void> {
    this.unregisterExit();
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (this.daemon && (await this.tryDocker(['version'], { timeoutMs: 3_000 }).then((r) => r.code === 0, () => false))) {
      // Removing containers through the API lets drivers see Leave/DeleteEndpoint; bounded,
      // since a dead remote driver makes the engine retry.
      const ids = (await this.tryDocker(['ps', '-aq'], { timeoutMs: 5_000 })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await this.tryDocker(['rm', '-f', ...ids], { timeoutMs: 15_000 });
    }
    await step(async () => this.daemon?.stop(10_000));
    await step(() => this.sandbox.destroy());
    await step(() => unmountLeftovers(this.dir));
    if (errors.length > 0) throw errors[0];
  }

  private stopSync(): void {
    if (this.daemon) {
      try {
        process.kill(this.daemon.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    this.sandbox.destroySync();
  }
}

function checkPluginName(name: string): string {
  if (!PLUGIN_NAME.test(name)) throw new HarnessError('harness-bad-plugin-name', 'bad-request', `plugin name ${JSON.stringify(name)} must match ${PLUGIN_NAME}`);
  return name;
}

/** Mounts that escaped into the caller's namespace would block removal: detach them lazily. */
async function unmountLeftovers(dir: string): Promise<void> {
  for (const m of mountsUnder(dir).reverse()) await tryRun('umount', ['-l', m]);
}

/**
 * Start dockerd in the network namespace `opts.netns` and wait until its API answers.
 * On any failure everything started so far is torn down before the error is thrown.
 */
export async function startDockerd(opts: DockerdOptions): Promise<DockerEngine> {
  if (!existsSync(opts.netns)) throw new HarnessError('harness-no-netns', 'not-found', `network namespace ${opts.netns} does not exist`);
  await sweepStaleEngines();
  const id = uniqueId(4);
  const dir = opts.dir ?? mkdtempSync('/tmp/tsot-dockerd-');
  mkdirSync(dir, { recursive: true });
  const pluginDir = opts.pluginDir ?? join(dir, 'plugins');
  mkdirSync(pluginDir, { recursive: true });
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  const hostname = opts.hostname ?? `tsot-${id}`;
  const sandbox = await EngineSandbox.create({
    dir,
    hostname,
    cgroup: `tsot-${id}`,
    mounts: [
      { type: 'tmpfs', target: '/run' },
      { type: 'bind', source: pluginDir, target: '/run/docker/plugins' },
      { type: 'tmpfs', target: '/etc/docker' },
      { type: 'bind', source: pluginDir, target: '/etc/docker/plugins' },
      ...(opts.binds ?? []).map((b) => ({ type: 'bind' as const, ...b })),
    ],
  }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const engine = new DockerEngine(id, dir, opts.netns, pluginDir, hostname, sandbox, opts.cli ?? DEFAULT_CLI);
  try {
    engine.launch(opts.extraArgs ?? []);
    await engine.waitReady(opts.startTimeoutMs ?? 30_000);
    return engine;
  } catch (err) {
    await engine.stop().catch(() => undefined);
    throw err;
  }
}

/**
 * A container start that died inside runc on a loaded machine (see DockerEngine.docker): the
 * set-key hook's bare ENOENT, or runc's init pipe broken; the container is left created.
 */
const HOOK_RACE = /error running hook #0:.*level=fatal msg=\\?"no such file or directory|error during container init: writing syncT .*broken pipe/s;

/** The command that finishes what a hook-race failure of `args` left undone, if it is safe to run. */
function hookRaceRetry(args: string[]): string[] | undefined {
  if (args[0] === 'start' && args.length === 2) return args;
  if (args[0] !== 'run') return undefined;
  if (args.includes('--rm')) return args;
  const i = args.indexOf('--name');
  if (args.includes('-d') && i > 0 && args[i + 1]) return ['start', args[i + 1]!];
  return undefined;
}

