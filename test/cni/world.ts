// A CNI test world: a host namespace the plugins run in (as a runtime there would run them),
// container namespaces, a SQLite store and a CNI bin directory, all removed at teardown.
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Ipam } from '../../ipam/index.js';
import { openStore } from '../../store/open.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { startDaemon } from '../harness/daemon.js';
import { tryRun } from '../harness/exec.js';
import { NetnsSet, type Netns } from '../harness/netns.js';
import { caller, pluginDir, tempDir, type CallEnv, type Teardown } from './harness.js';

export interface World {
  nets: NetnsSet;
  host: Netns;
  dir: string;
  bin: string;
  store: string;
  /** Calls a plugin inside the host namespace (always: a plugin must never run in the root namespace). */
  cni: ReturnType<typeof caller>;
  /** Attachment env for a container namespace, run inside the host namespace. */
  env(ctr: Netns | undefined, containerId: string, extra?: Partial<CallEnv>): CallEnv;
  container(name: string): Promise<Netns>;
}

/** Make a world; everything in it goes at teardown. */
export async function makeWorld(t: Teardown, tag: string): Promise<World> {
  const nets = new NetnsSet(tag);
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const dir = await tempDir(t, tag);
  const bin = await pluginDir(t);
  let calls = 0;
  if (process.env.TSOT_CNI_DAEMON === '1') await worldDaemon(t, host.path, dir, () => calls);
  return {
    nets,
    host,
    dir,
    bin,
    store: `sqlite://${join(dir, 'store.db')}`,
    cni: (plugin, command, conf, env = {}) => {
      if (command !== 'VERSION' && plugin.startsWith('ts')) calls++;
      return caller(bin)(plugin, command, conf, { ...env, hostNetns: host.path, extra: { TSOVERLAY_CNI_LOCK_DIR: dir, ...env.extra } });
    },
    env: (ctr, containerId, extra = {}) => ({ containerId, ifname: 'eth0', hostNetns: host.path, ...(ctr ? { netns: ctr.path } : {}), ...extra }),
    container: (name) => nets.add(name),
  };
}

/**
 * TSOT_CNI_DAEMON=1: a tsoverlay daemon in the world's host namespace on the world's store,
 * reached through the sockets the tests' configs name for "no daemon" (no-daemon.sock,
 * none.sock are links to its socket): the same suites, every call served by the daemon.
 */
async function worldDaemon(t: Teardown, hostPath: string, dir: string, ourCalls: () => number): Promise<void> {
  const d = await startDaemon({ netnsPath: hostPath, store: `sqlite://${join(dir, 'store.db')}` });
  t.teardown(async () => {
    const served = d.records().filter((r) => r.msg === 'cni request').length;
    await d.cleanup();
    // A test whose calls never reached the daemon did not test this mode.
    if (served === 0 && ourCalls() > 0) throw new Error(`TSOT_CNI_DAEMON=1: ${ourCalls()} calls, none served by the daemon`);
  });
  // Generous: a suite starts one daemon per test, all at once, through tsx.
  await d.waitForLog('daemon ready', 90_000);
  for (const name of ['no-daemon.sock', 'none.sock']) await symlink(d.socket, join(dir, name));
}

/** A tsbridge + tsipam plugin object. */
export function bridgeConf(w: World, subnet: string, extra: Record<string, unknown> = {}, ipamExtra: Record<string, unknown> = {}) {
  return {
    cniVersion: '1.0.0',
    name: 'tsot-br',
    type: 'tsbridge',
    bridge: 'tsotbr0',
    isGateway: true,
    ipMasq: true,
    store: w.store,
    daemonSocket: join(w.dir, 'no-daemon.sock'),
    ipam: { type: 'tsipam', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }], ...ipamExtra },
    ...extra,
  };
}

/** Endpoint allocations in the store ("address owner"). */
export async function allocations(store: string): Promise<string[]> {
  const s = await openStore(store);
  try {
    return (await new Ipam(s, { hostId: 'test' }).listAllocations()).filter((a) => a.kind === 'endpoint').map((a) => `${a.address} ${a.owner}`);
  } finally {
    await s.close();
  }
}

/** Endpoint records in the store ("network/endpoint"). */
export async function endpointRecords(store: string): Promise<string[]> {
  const s = await openStore(store);
  try {
    return (await new RecordStore(s).listAllEndpoints()).map((e) => `${e.networkId}/${e.id}`);
  } finally {
    await s.close();
  }
}

/** Every endpoint record in the store. */
export async function endpointDetails(store: string) {
  const s = await openStore(store);
  try {
    return await new RecordStore(s).listAllEndpoints();
  } finally {
    await s.close();
  }
}

/** Names of the links in a namespace. */
export async function linkNames(ns: Netns): Promise<string[]> {
  const out = await ns.ip('-j', 'link', 'show');
  return (JSON.parse(out) as Array<{ ifname: string }>).map((l) => l.ifname);
}

/** The host ends of veth pairs tsbridge made (tso…). */
export async function hostVeths(ns: Netns): Promise<string[]> {
  return (await linkNames(ns)).filter((n) => /^tso[0-9a-f]{12}$/.test(n));
}

/** iptables-save of a namespace (one family). */
export async function iptablesSave(ns: Netns, family: 4 | 6 = 4): Promise<string> {
  return ns.exec(family === 4 ? 'iptables-save' : 'ip6tables-save', []);
}

/** One ping from a namespace (true when answered). */
export async function ping(ns: Netns, addr: string): Promise<boolean> {
  const r = await tryRun('nsenter', [`--net=${ns.path}`, '--', 'ping', '-c', '1', '-W', '2', addr], { timeoutMs: 10_000 });
  return r.code === 0;
}
