// The composition root: opens the store, registers this host under a liveness lease, builds
// the kernel, firewall and IPAM once, serves the Docker plugins and the local API, and stops
// cleanly on request. Stopping never tears down the data plane: links and rules stay, and a
// restart reconciles from the store.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ipam } from '../ipam/index.js';
import { Kernel } from '../netlink/index.js';
import { SpawnHelper } from '../netlink/spawn-helper.js';
import { HostPortAllocator, readListeners } from '../proxy/allocator.js';
import { removeBackendRules } from '../proxy/backend-switch.js';
import { NetnsTools } from '../proxy/exec.js';
import { Firewall } from '../proxy/firewall.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import type { DaemonConfig } from './config.js';
import { cniHandOff } from './cni-handoff.js';
import { Reconciler } from './reconciler.js';
import { HostDns } from '../dns/host.js';
import { startDockerPlugins, type DockerPlugins } from './docker-plugins.js';
import { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import { HostRegistration } from '../plugins/drivers/overlay/hosts.js';
import { startLocalApi, type LocalApi } from './local-api.js';
import { NetworkAdmin } from './network-admin.js';
import { startStoreRules, type StoreRules } from './store-rules.js';
import { startObservability, type Observability } from './observability/index.js';
import { adoptHostId, daemonStateDir, ensureDir, HostStateError, HostStateLock, readFirewallBackend, recordFirewallBackend, type HeldLock } from '../plugins/cni/host-state.js';
import type { Logger } from './log.js';

export const VERSION = '0.1.0';

/** Longest wait at start-up for standalone CNI calls in flight (they hold the start-up lock). */
export const STARTUP_LOCK_WAIT_MS = 60_000;

/** Seconds a host stays registered after its daemon stops renewing. */
export const HOST_LEASE_TTL = 10;

/** What a host record holds (keys.host(id)). */
export interface HostRecord {
  id: string;
  advertise: string | null;
  version: string;
  pid: number;
  startedAt: string;
}

export interface DaemonDeps {
  /** The advertise address when not configured (undefined: this host works alone). */
  detectAdvertise: () => Promise<string | undefined>;
}

export class Daemon {
  private store?: Store;
  private registration?: HostRegistration;
  private overlay?: OverlayDriver;
  private api?: LocalApi;
  private docker?: DockerPlugins;
  private obs?: Observability;
  private reconciler?: Reconciler;
  private dns?: HostDns;
  private rules?: StoreRules;
  private advertise: string | null = null;
  private readonly startedAt = new Date().toISOString();
  private stopping = false;
  /** Forks iproute2 for the kernel layer from a small child: a fork from this big process costs ms each. */
  private readonly spawner = new SpawnHelper();

  constructor(
    private readonly cfg: DaemonConfig,
    private readonly log: Logger,
    private readonly deps: DaemonDeps,
  ) {}

  /** Start every part; on failure, whatever was started is stopped again. */
  async start(): Promise<void> {
    let startup: HeldLock | undefined;
    try {
      this.makeDirs();
      // The directory the standalone CNI executables share with us: our host id, so they record
      // under it while we are down, and the lock that keeps them out of our start-up reconcile.
      const meet = daemonStateDir(this.cfg);
      ensureDir(meet);
      adoptHostId(meet, this.cfg.hostId);
      this.advertise = this.cfg.advertise ?? (await this.deps.detectAdvertise()) ?? null;
      if (!this.advertise) this.log.warn('no advertise address found: this host works alone (no overlay peers)');
      const store = await openStore(this.cfg.store);
      this.store = store;
      this.log.info({ store: store.description }, 'store opened');
      // Everything below gets the instrumented store, so /metrics times the daemon's own calls.
      this.obs = await startObservability({ store, listen: this.cfg.metrics, log: this.log });
      this.store = this.obs.store;
      if (this.obs.web) this.log.info({ address: this.obs.web.address }, 'metrics and topology page served');
      const core = this.core(this.store);
      startup = await this.startupLock(meet);
      await this.settleFirewallBackend(meet, core.tools);
      // The overlay first: its rules must be desired before the firewall's full reconcile.
      this.overlay = new OverlayDriver({
        kernel: core.kernel,
        store: this.store,
        hostId: this.cfg.hostId,
        advertise: this.advertise ?? undefined,
        firewall: core.firewall,
        log: this.log.child({ driver: 'tsoverlay' }),
        releaseAddresses: async (host) => void (await core.ipam.gc({ isOwnerValid: () => true, deadHosts: [host] })),
      });
      await this.overlay.start();
      await this.register(this.store, this.overlay);
      this.docker = await startDockerPlugins({ ...core, hostId: this.cfg.hostId, pluginDir: this.cfg.pluginDir, dockerHost: this.cfg.dockerHost, store: this.store, overlay: this.overlay, log: this.log });
      // Links and service VIPs from `tsoverlay link|service` records (daemon/store-rules.ts), started
      // after the plugins' reconcile so the firewall already knows this host's networks.
      const rulesLog = this.log.child({ component: 'store-rules' });
      this.rules = await startStoreRules({
        store: this.store,
        firewall: core.firewall,
        onError: (err, what) => rulesLog.warn({ err: (err as Error).message, what }, 'record not applied'),
        onWaiting: (link, why) => rulesLog.debug({ link, why }, 'link not applied here'),
      });
      this.reconciler = new Reconciler({
        bridge: this.docker.bridge,
        overlay: this.overlay,
        firewall: core.firewall,
        metrics: this.obs.metrics.reconcile,
        log: this.log.child({ component: 'reconcile' }),
        intervalMs: this.cfg.reconcileInterval * 1000,
      });
      this.reconciler.start();
      const dnsLog = this.log.child({ component: 'dns' });
      // Names of every host's endpoints, answered on this host's gateway addresses.
      this.dns = await HostDns.start({
        store: this.store,
        hostId: this.cfg.hostId,
        port: this.cfg.dnsPort,
        domain: this.cfg.dnsDomain,
        upstreams: this.cfg.dnsUpstream,
        log: (msg, fields) => dnsLog.info(fields ?? {}, msg),
      });
      const cni = cniHandOff({ ...core, hostId: this.cfg.hostId, store: this.store, storeUrl: this.cfg.store, overlay: this.overlay, log: this.log });
      // `tsoverlay network create|rm`: the same drivers and IPAM the plugins use.
      const networks = new NetworkAdmin({ ...core, store: this.store, storeUrl: this.cfg.store, hostId: this.cfg.hostId, bridge: this.docker.bridge, host: this.docker.host, overlay: this.overlay, log: this.log.child({ component: 'networks' }) });
      this.api = await startLocalApi({ socket: this.cfg.socket, log: this.log, status: () => this.status(), cni, networks });
      // Executables waiting for the lock ask the socket again once they have it: it answers now.
      startup?.release();
      startup = undefined;
      this.log.info({ socket: this.cfg.socket, advertise: this.advertise }, 'daemon ready');
    } catch (err) {
      startup?.release();
      await this.stop();
      throw err;
    }
  }

  /**
   * The start-up lock, exclusive: waits for standalone CNI calls in flight to finish and holds
   * new ones until the local API answers. Calls that outlast STARTUP_LOCK_WAIT_MS (a hung
   * plugin) are logged and not waited for.
   */
  private async startupLock(dir: string): Promise<HeldLock | undefined> {
    try {
      return await HostStateLock.acquire(dir, 'exclusive', 0);
    } catch (err) {
      if (!(err instanceof HostStateError)) throw err;
    }
    // The wait runs in a worker thread: this process keeps logging and answering signals.
    try {
      return await HostStateLock.acquireOffThread(dir, 'exclusive', STARTUP_LOCK_WAIT_MS, () =>
        this.log.info({ dir }, 'start-up: waiting for standalone CNI calls to finish'),
      );
    } catch (err) {
      if (!(err instanceof HostStateError)) throw err;
      this.log.warn({ err: err.message }, 'standalone CNI calls still running: starting without the start-up lock');
      return undefined;
    }
  }

  /**
   * Under the start-up lock: when the backend recorded in the meeting directory is not ours (the
   * host switched; nothing recorded means the iptables of older daemons and of the standalone
   * executables), remove the other backend's rules, then record ours so the standalone
   * executables program the same one while we are down. A failed removal is logged and leaves
   * the record as it was: the next start tries again.
   */
  private async settleFirewallBackend(dir: string, tools: NetnsTools): Promise<void> {
    const chosen = this.cfg.firewallBackend;
    const recorded = readFirewallBackend(dir);
    if (recorded === chosen) return;
    const other = chosen === 'nft' ? 'iptables' : 'nft';
    let removed: number;
    try {
      removed = await removeBackendRules(other, tools);
    } catch (err) {
      // Not fatal (our own backend works); the choice stays unrecorded, so the next start retries.
      this.log.warn({ err: (err as Error).message, from: recorded ?? other, to: chosen }, `firewall backend switch: the ${other} backend's rules could not be removed`);
      return;
    }
    if (recorded !== undefined || removed > 0) {
      this.log.info({ from: recorded ?? other, to: chosen, removed }, `firewall backend switched to ${chosen}: removed the ${other} backend's rules`);
    }
    recordFirewallBackend(dir, chosen);
  }

  /** Stop serving and release the store; the lease is left to expire, not revoked. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.api?.close();
    await this.reconciler?.stop();
    await this.dns?.stop();
    await this.rules?.stop();
    await this.docker?.close();
    await this.overlay?.stop();
    await this.obs?.close();
    // Not revoked: peers keep this host's data plane for the lease's lifetime, so a
    // quick restart (upgrade, crash) does not interrupt traffic (DESIGN.md "State").
    await this.registration?.stop();
    await this.store?.close();
    this.spawner.close();
    this.log.info('daemon stopped');
  }

  /** Kernel, firewall, host ports and IPAM, made once here and handed to every driver. */
  private core(store: Store) {
    const kernel = new Kernel({ spawn: this.spawner.collect });
    const host = kernel.ns();
    const tools = new NetnsTools();
    const ports = new HostPortAllocator({ hostId: this.cfg.hostId, store, listeners: () => readListeners(tools) });
    const firewall = new Firewall({ tools, allocator: ports, backend: this.cfg.firewallBackend });
    // Auto pools never overlap a route of this host (docker0's 172.17.0.0/16, the LAN, …).
    const hostRoutes = async () => (await host.routes()).map((r) => r.dst).filter((d) => d !== 'default');
    const ipam = new Ipam(store, { hostId: this.cfg.hostId, hostRoutes });
    return { kernel, firewall, ports, ipam, tools };
  }

  private makeDirs(): void {
    mkdirSync(this.cfg.stateDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.cfg.pluginDir, { recursive: true, mode: 0o755 });
    mkdirSync(dirname(this.cfg.socket), { recursive: true, mode: 0o755 });
  }

  private status() {
    return {
      hostId: this.cfg.hostId,
      advertise: this.advertise,
      store: this.store?.description ?? this.cfg.store,
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt,
    };
  }

  /** Keep hosts/<id> alive under a lease (with the overlay's VTEP fields); re-registered if lost. */
  private async register(store: Store, overlay: OverlayDriver): Promise<void> {
    const record = {
      ...overlay.hostFields(),
      id: this.cfg.hostId,
      advertise: this.advertise,
      version: VERSION,
      pid: process.pid,
      startedAt: this.startedAt,
    };
    this.registration = new HostRegistration({ store, record, ttlSeconds: HOST_LEASE_TTL, log: this.log });
    await this.registration.start();
    this.log.info({ hostId: this.cfg.hostId, ttl: HOST_LEASE_TTL }, 'host registered');
  }
}
