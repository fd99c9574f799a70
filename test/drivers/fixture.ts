// Test fixture for the drivers: a "host" namespace (where bridges live), container namespaces,
// a fresh SQLite store, and a BridgeDriver bound to the host namespace. Everything is removed
// in teardown, even when the test fails; nothing touches the root namespace.
import type { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kernel, type NetnsHandle } from '../../netlink/index.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import { BridgeDriver, type BridgeDriverOptions } from '../../plugins/drivers/bridge/bridge.js';
import type { DriverLogger } from '../../plugins/drivers/common/log.js';
import { NetnsSet, type Netns } from '../harness/netns.js';

export interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

/** A logger that keeps every line (tests assert on warnings). */
export function collectingLogger(): DriverLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface Env {
  k: Kernel;
  set: NetnsSet;
  host: Netns;
  /** netlink handle on the host namespace. */
  h: NetnsHandle;
  store: Store;
  storeUrl: string;
  log: ReturnType<typeof collectingLogger>;
  driver: BridgeDriver;
  /** A container namespace per name. */
  ctr: Record<string, Netns>;
  /** Another driver instance on the same host and store (e.g. after a restart). */
  newDriver(extra?: Partial<BridgeDriverOptions>): BridgeDriver;
}

/** A host namespace, `containers` container namespaces, a store and a driver; all cleaned up. */
export async function bridgeEnv(t: ExecutionContext, tag: string, containers: string[] = [], extra: Partial<BridgeDriverOptions> = {}): Promise<Env> {
  const set = new NetnsSet(tag);
  const dir = mkdtempSync(join(tmpdir(), 'tsot-drv-'));
  let store: Store | undefined;
  t.teardown(async () => {
    await store?.close();
    await set.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const host = await set.add('host');
  const ctr: Record<string, Netns> = {};
  for (const c of containers) ctr[c] = await set.add(c);
  const storeUrl = `sqlite://${join(dir, 'store.db')}`;
  store = await openStore(storeUrl, { sqlite: { pollMs: 10, sweepMs: 100 } });
  const k = new Kernel({ timeoutMs: 20_000 });
  const log = collectingLogger();
  const newDriver = (more: Partial<BridgeDriverOptions> = {}) =>
    new BridgeDriver({ kernel: k, store: store!, hostId: 'h1', hostNetns: host.path, log, ...extra, ...more });
  return { k, set, host, h: k.ns(host.path), store, storeUrl, log, driver: newDriver(), ctr, newDriver };
}

/** One ping (bounded) from inside a namespace; true when answered. */
export async function ping(from: Netns, to: string, waitSeconds = 2): Promise<boolean> {
  const r = await from.tryExec('ping', ['-c', '1', '-W', String(waitSeconds), '-n', '-q', to], { timeoutMs: 6_000 });
  return r.code === 0;
}

/** Up to `tries` pings (first answer wins): for paths just (re)made, on a loaded machine. */
export async function pingSoon(from: Netns, to: string, tries = 3): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await ping(from, to)) return true;
  return false;
}

/** A 64-hex id like Docker's, from a short tag. */
export function dockerId(tag: string): string {
  return createHash('sha256').update(tag).digest('hex');
}
