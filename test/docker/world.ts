// One Docker "host" per test file: a namespace, a real dockerd 20.10 in it, and the real
// tsoverlay daemon in the same namespace serving its plugins on the engine's private plugin
// dir. Helpers read what a user (and a leak hunt) would look at: the store, links, rules.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { startDockerd, type DockerEngine } from '../harness/docker.js';
import { waitFor } from '../harness/engine-api.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { openStore } from '../../store/open.js';
import { PREFIX } from '../../store/keys.js';
import type { Store } from '../../store/types.js';

export interface World {
  nets: NetnsSet;
  host: Netns;
  engine: DockerEngine;
  daemon: DaemonHandle;
  /** A store connection of the test's own (the daemon's SQLite file). */
  store: Store;
  dir: string;
  hostId: string;
  /** Start the daemon again (after stop/kill) on the same dir and store; resolves when ready. */
  restartDaemon(): Promise<DaemonHandle>;
  /** `docker ARGS` → stdout. */
  docker(args: string[]): Promise<string>;
  /** Keys under PREFIX whose path contains `part` (e.g. 'ipam/addresses', 'endpoints'). */
  keysLike(part: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

export interface WorldOptions {
  /** dockerd flags (e.g. --bridge=none). */
  engineArgs?: string[];
  /** Daemon log level (default info; debug logs every plugin call). */
  logLevel?: string;
}

/** Namespace + engine + daemon; on failure everything made so far is removed. */
export async function startWorld(tag: string, opts: WorldOptions = {}): Promise<World> {
  const nets = new NetnsSet(tag);
  const dir = mkdtempSync(join(tmpdir(), 'tsot-dkw-'));
  const hostId = `h-${tag}`;
  let engine: DockerEngine | undefined;
  let daemon: DaemonHandle | undefined;
  let store: Store | undefined;
  const cleanup = async () => {
    // The engine first: its teardown still reaches the plugins (Leave, DeleteEndpoint…).
    await engine?.stop().catch(() => undefined);
    await daemon?.stop().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await nets.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const host = await nets.add('h');
    engine = await startDockerd({ netns: host.path, extraArgs: opts.engineArgs ?? [] });
    const e = engine;
    const start = async () => {
      const d = await startDaemon({
        netnsPath: host.path,
        hostId,
        dir,
        pluginDir: e.pluginDir,
        extraArgs: ['--docker-host', `unix://${e.socket}`, '--log-level', opts.logLevel ?? 'info'],
      });
      await d.waitForLog('daemon ready', 30_000);
      return d;
    };
    daemon = await start();
    store = await openStore(daemon.store);
    await engine.importBusybox();
    const world: World = {
      nets,
      host,
      engine,
      daemon,
      store,
      dir,
      hostId,
      async restartDaemon() {
        await world.daemon.stop();
        world.daemon = daemon = await start();
        return world.daemon;
      },
      docker: (args) => e.docker(args),
      async keysLike(part) {
        const r = await world.store.range(PREFIX);
        return r.kvs.map((kv) => kv.key).filter((k) => k.includes(part));
      },
      cleanup,
    };
    return world;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Poll until fn resolves true (bounded). */
export function eventually(fn: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  return waitFor(fn, timeoutMs, () => new Error(`timed out waiting for ${what}`), 100);
}

/** `docker network inspect NAME` → the engine's view (Id, IPAM, Containers…). */
export async function inspectNetwork(w: World, name: string): Promise<any> {
  return JSON.parse(await w.docker(['network', 'inspect', name]))[0];
}

/**
 * For an afterEach.always hook: when the test failed, log what explains it — the daemon's
 * warnings and errors and the tail of dockerd's log (the CI output keeps only the test log).
 */
export function logOnFailure(t: { passed: boolean; log(...v: unknown[]): void }, w: World | undefined): void {
  if (t.passed || !w) return;
  const bad = w.daemon.records().filter((r) => typeof r.level === 'number' && r.level >= 40);
  for (const r of bad.slice(-40)) t.log(`daemon: ${JSON.stringify(r).slice(0, 600)}`);
  // The plugin calls the engine made (logged at debug level), oldest first: what reached us.
  const calls = w.daemon.records().filter((r) => typeof r.method === 'string');
  for (const r of calls.slice(-40)) t.log(`call: ${r.method} ${r.status ?? ''} ${String(r.endpoint ?? r.EndpointID ?? '').slice(0, 12)} ${r.ms ?? ''} ms ${r.err ?? ''}`.slice(0, 300));
  const engineLog = w.engine.log().split('\n').filter((l) => /level=(error|warning)/.test(l));
  for (const l of engineLog.slice(-30)) t.log(`dockerd: ${l.slice(0, 600)}`);
}

