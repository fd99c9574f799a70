// The multi-host end-to-end world: three host namespaces on one underlay plus a store
// namespace holding a real 3-member etcd; in every host the real `tsoverlay daemon`
// (from source), with real dockerd 20.10 engines on hosts a and b (cluster store on the
// same etcd, v2 API) and podman 4.3 with its CNI backend on host c. The test process
// reaches none of it directly: it asks through CLIs run inside the namespaces.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { distIsFresh, ROOT } from '../cni/harness.js';
import { startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { startEtcdCluster, type EtcdCluster } from '../harness/etcd.js';
import { run, tryRun, type RunOptions, type RunResult } from '../harness/exec.js';
import { makeHosts } from '../harness/hosts.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { setupPodman, type PodmanHost } from '../harness/podman.js';

/** The store namespace's underlay address (etcd clients connect here). */
export const STORE_ADDRESS = '10.99.0.100';
const UNDERLAY = '10.99.0';

export type HostName = 'a' | 'b' | 'c';

export interface E2eHost {
  name: HostName;
  /** The daemon's --host-id. */
  id: string;
  ns: Netns;
  /** Underlay (VTEP) address. */
  address: string;
  /** Working dir of this host's daemon (state, socket, logs across restarts). */
  dir: string;
  daemon: DaemonHandle;
  /** Hosts a and b. */
  engine?: DockerEngine;
  /** Host c. */
  podman?: PodmanHost;
}

export interface E2eWorld {
  set: NetnsSet;
  storeNs: Netns;
  etcd: EtcdCluster;
  /** The daemons' --store (etcd v3, every member). */
  storeUrl: string;
  hosts: Record<HostName, E2eHost>;
  /** The CNI bin dir podman uses (our `tsoverlay`, then the reference plugins). */
  cniBin: string;
  /** Start a host's daemon again (after stop/kill) with the same dir and flags; resolves when ready. */
  restartDaemon(h: E2eHost): Promise<DaemonHandle>;
  /** `etcdctl ARGS` inside the store namespace → stdout. */
  etcdctl(args: string[], opts?: RunOptions): Promise<string>;
  /** `tsoverlay ARGS --store URL` inside host h's namespace. */
  cli(h: E2eHost, args: string[]): Promise<RunResult>;
  cleanup(): Promise<void>;
}

/** A CNI bin dir with `tsoverlay` (compiled when dist/ is fresh, else through tsx). */
function writeCniBin(dir: string): void {
  const compiledEntry = join(ROOT, 'dist', 'bin', 'tsoverlay.js');
  const fresh = distIsFresh() && existsSync(compiledEntry) && statSync(compiledEntry).mtimeMs >= statSync(join(ROOT, 'bin', 'tsoverlay.ts')).mtimeMs;
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const entry = fresh ? `'${compiledEntry}'` : `--import='${loader}' '${join(ROOT, 'bin', 'tsoverlay.ts')}'`;
  const file = join(dir, 'tsoverlay');
  writeFileSync(file, `#!/bin/sh\nexec '${process.execPath}' ${entry} "$@"\n`);
  chmodSync(file, 0o755);
}

function daemonArgs(h: Pick<E2eHost, 'address' | 'engine'>, reconcileSeconds: number): string[] {
  return [
    '--advertise', h.address,
    // Host c has no engine: a socket nobody serves (the Docker GC then just logs "skipped").
    '--docker-host', h.engine ? `unix://${h.engine.socket}` : 'unix:///nonexistent/tsot-no-engine.sock',
    // Nothing answers there: names outside our zone fail, ours never wait on it.
    '--dns-upstream', `${STORE_ADDRESS}:53`,
    '--reconcile-interval', String(reconcileSeconds),
    '--log-level', 'info',
  ];
}

/**
 * Start a host's daemon and wait until it is ready. On the podman host it runs inside podman's
 * private mount namespace: on a real host both share /run, where podman's CNI_NETNS paths are.
 */
async function launchDaemon(h: E2eHost, storeUrl: string, reconcileSeconds: number): Promise<DaemonHandle> {
  const d = await startDaemon({
    netnsPath: h.ns.path,
    // --wd: entering a mount namespace resets the working dir, and `--import=tsx` resolves from it.
    ...(h.podman ? { nsenterArgs: [...h.podman.enterArgs(), `--wd=${ROOT}`] } : {}),
    hostId: h.id,
    store: storeUrl,
    dir: h.dir,
    ...(h.engine ? { pluginDir: h.engine.pluginDir } : {}),
    extraArgs: daemonArgs(h, reconcileSeconds),
  });
  try {
    await d.waitForLog('daemon ready', 60_000);
  } catch (err) {
    await d.stop();
    throw err;
  }
  return d;
}

export interface E2eOptions {
  /** Daemon --reconcile-interval in seconds (default 5). */
  reconcileSeconds?: number;
}

/**
 * Build the world; on failure, everything made so far is removed. The caller owns
 * `cleanup()` (call it in `test.after.always`): engines and podman first (their teardown
 * still reaches the daemons), then daemons, etcd, namespaces and directories.
 */
export async function startE2eWorld(opts: E2eOptions = {}): Promise<E2eWorld> {
  const set = new NetnsSet('e2e');
  const base = mkdtempSync(join(tmpdir(), 'tsot-e2e-'));
  const cniBin = join(base, 'cnibin');
  const made: Partial<E2eHost>[] = [];
  let etcd: EtcdCluster | undefined;
  // If this process ends without cleanup (AVA's timeout), the daemons must not outlive it; the
  // harness's own hooks end engines, podman and etcd, and the runner sweeps the namespaces.
  const onExit = () => made.forEach((h) => h.daemon?.child.kill('SIGKILL'));
  process.once('exit', onExit);
  const cleanup = async () => {
    process.removeListener('exit', onExit);
    for (const h of made) await h.engine?.stop().catch(() => undefined);
    for (const h of made) await h.podman?.stop().catch(() => undefined);
    for (const h of made) await h.daemon?.stop().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    await set.cleanup();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const under = await makeHosts(set, 3, { prefix: UNDERLAY });
    const storeNs = await set.add('st');
    await storeNs.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'pst', 'netns', `${set.prefix}-sw`);
    await storeNs.ip('addr', 'add', `${STORE_ADDRESS}/24`, 'dev', 'eth0');
    await storeNs.ip('link', 'set', 'eth0', 'up');
    await run('ip', ['-n', `${set.prefix}-sw`, 'link', 'set', 'pst', 'master', 'br0', 'up']);
    etcd = await startEtcdCluster({ netnsPath: storeNs.path, host: STORE_ADDRESS, enableV2: true });
    const storeUrl = etcd.url;
    const reconcile = opts.reconcileSeconds ?? 5;
    mkdirSync(cniBin);
    writeCniBin(cniBin);

    const names: HostName[] = ['a', 'b', 'c'];
    const hosts = {} as Record<HostName, E2eHost>;
    // Settled, not all: a failed host must not leave the others starting while cleanup runs.
    const started = await Promise.allSettled(
      names.map(async (name, i) => {
        const u = under[i]!;
        const h: Partial<E2eHost> = { name, id: `e2e-${name}`, ns: u.ns, address: u.address, dir: join(base, `host-${name}`) };
        made.push(h);
        if (name !== 'c') {
          h.engine = await startDockerd({
            netns: u.ns.path,
            hostname: h.id,
            extraArgs: ['--bridge=none', `--cluster-store=etcd://${STORE_ADDRESS}:2379`, `--cluster-advertise=${u.address}:2376`],
          });
          await h.engine.importBusybox();
        } else {
          h.podman = await setupPodman({ netns: u.ns.path, cniPluginDirs: [cniBin, '/usr/lib/cni'], hostname: h.id });
        }
        h.daemon = await launchDaemon(h as E2eHost, storeUrl, reconcile);
        hosts[name] = h as E2eHost;
      }),
    );
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const world: E2eWorld = {
      set,
      storeNs,
      etcd,
      storeUrl,
      hosts,
      cniBin,
      async restartDaemon(h) {
        await h.daemon.stop();
        // h is the object `made` holds: cleanup stops the new daemon.
        h.daemon = await launchDaemon(h, storeUrl, reconcile);
        return h.daemon;
      },
      etcdctl: (args, o) => storeNs.exec('etcdctl', [`--endpoints=${etcd!.endpoints.join(',')}`, ...args], o),
      cli: (h, args) =>
        tryRun('nsenter', [`--net=${h.ns.path}`, '--', process.execPath, '--import=tsx', join(ROOT, 'bin', 'tsoverlay.ts'), ...args, '--store', storeUrl], {
          timeoutMs: 30_000,
          cwd: ROOT,
        }),
      cleanup,
    };
    return world;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
