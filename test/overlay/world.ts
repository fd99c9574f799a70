// Multi-host overlay fixture: N "host" namespaces on one underlay (a bridge in a switch namespace)
// plus an "outside" namespace on it, a real etcd cluster (loopback, root namespace), and per host
// a control plane running IN THIS TEST PROCESS: its own etcd client, host registration, firewall
// and OverlayDriver targeting the host namespace by path. Each host's etcd traffic goes through a
// TCP relay in this process that a test can cut (with the host's underlay) to make it "vanish".
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Kernel } from '../../netlink/index.js';
import { OverlayDriver, type OverlayDriverOptions } from '../../plugins/drivers/overlay/overlay.js';
import { HostRegistration } from '../../plugins/drivers/overlay/hosts.js';
import { Firewall } from '../../proxy/firewall.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/types.js';
import type { EtcdCluster } from '../harness/etcd.js';
import { run } from '../harness/exec.js';
import { makeHosts, type UnderlayHost } from '../harness/hosts.js';
import { NetnsSet, type Netns } from '../harness/netns.js';

/** Host lease TTL in these tests (the daemon's is 10 s). */
export const TTL_SECONDS = 2;
export const OUTSIDE = '10.99.0.100';

/** A TCP relay to every etcd member that can be cut (connections dropped, new ones refused). */
export class EtcdRelay {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private cut = false;
  ports: number[] = [];

  static async start(cluster: EtcdCluster): Promise<EtcdRelay> {
    const r = new EtcdRelay();
    for (const ep of cluster.endpoints) {
      const target = new URL(ep);
      const srv = createServer((c) => r.relay(c, Number(target.port)));
      await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
      r.servers.push(srv);
      r.ports.push((srv.address() as { port: number }).port);
    }
    return r;
  }

  get url(): string {
    return `etcd://${this.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
  }

  private relay(c: Socket, port: number): void {
    if (this.cut) return void c.destroy();
    const up = connect(port, '127.0.0.1');
    for (const s of [c, up]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        c.destroy();
        up.destroy();
      });
    }
    c.pipe(up);
    up.pipe(c);
  }

  /** Drop every connection and refuse new ones until restore(). */
  sever(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.sever();
    await Promise.all(this.servers.map((s) => new Promise((res) => s.close(res))));
  }
}

/** One host's control plane (what its daemon would run). */
export interface HostPlane {
  store: Store;
  /** The URL `store` was opened from (through the host's relay). */
  storeUrl: string;
  registration: HostRegistration;
  driver: OverlayDriver;
}

export interface OverlayHost {
  index: number;
  id: string;
  ns: Netns;
  underlay: UnderlayHost;
  relay: EtcdRelay;
  firewall: Firewall;
  plane?: HostPlane;
}

export interface World {
  set: NetnsSet;
  k: Kernel;
  hosts: OverlayHost[];
  outside: Netns;
  /** Store URL path prefix of this test (isolates it from other tests on the cluster). */
  prefix: string;
  /** Start (or restart) a host's control plane: new store client, registration, driver.start(). */
  startPlane(h: OverlayHost, extra?: Partial<OverlayDriverOptions>): Promise<HostPlane>;
  /** Stop a host's control plane like a killed daemon: no revoke, the data plane stays. */
  killPlane(h: OverlayHost): Promise<void>;
  /** A container namespace on host h joined to network netId with address ip (a.b.c.d/len). */
  container(h: OverlayHost, netId: string, name: string, cidr: string): Promise<Netns>;
  /** A plain store client for the test itself. */
  store: Store;
}

/** Build the world; everything is removed in teardown (planes, relays, namespaces). */
export async function overlayWorld(t: Pick<ExecutionContext, 'teardown'>, cluster: EtcdCluster, count = 3, tag = 'ov'): Promise<World> {
  const set = new NetnsSet(tag);
  const k = new Kernel({ timeoutMs: 20_000 });
  const prefix = `/t-${randomBytes(4).toString('hex')}`;
  const hosts: OverlayHost[] = [];
  let store: Store | undefined;
  t.teardown(async () => {
    for (const h of hosts) await stopPlane(h, false);
    for (const h of hosts) await h.relay.close();
    await store?.close();
    await set.cleanup();
  });
  const under = await makeHosts(set, count);
  const outside = await set.add('out');
  const sw = `${set.prefix}-sw`;
  await outside.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'pout', 'netns', sw);
  await outside.ip('addr', 'add', `${OUTSIDE}/24`, 'dev', 'eth0');
  await outside.ip('link', 'set', 'eth0', 'up');
  await run('ip', ['-n', sw, 'link', 'set', 'pout', 'master', 'br0', 'up']);
  for (let i = 0; i < count; i++) {
    const u = under[i]!;
    await u.ns.exec('iptables', ['-P', 'FORWARD', 'DROP']);
    const firewall = new Firewall({ netnsPath: u.ns.path });
    await firewall.init();
    hosts.push({ index: i, id: `host-${i}`, ns: u.ns, underlay: u, relay: await EtcdRelay.start(cluster), firewall });
  }
  store = await openStore(`${cluster.url}${prefix}`);
  let ctrs = 0;
  const world: World = {
    set,
    k,
    hosts,
    outside,
    prefix,
    store,
    async startPlane(h, extra = {}) {
      await stopPlane(h, false);
      const storeUrl = `${h.relay.url}${prefix}`;
      const s = await openStore(storeUrl);
      const driver = new OverlayDriver({ kernel: k, store: s, hostId: h.id, advertise: h.underlay.address, hostNetns: h.ns.path, firewall: h.firewall, retryMs: 100, graceMs: 60_000, ...extra });
      const registration = new HostRegistration({ store: s, record: { ...driver.hostFields() }, ttlSeconds: TTL_SECONDS, retryMs: 200 });
      await registration.start();
      h.plane = { store: s, storeUrl, registration, driver };
      await driver.start();
      return h.plane;
    },
    killPlane: (h) => stopPlane(h, false),
    async container(h, netId, name, cidr) {
      const ns = await set.add(`c${ctrs++}`);
      const drv = h.plane!.driver;
      await drv.createEndpoint(netId, { id: name, addresses: [cidr], names: [name] });
      await drv.join(netId, name, { mode: 'netns', netnsPath: ns.path, ifname: 'eth0' });
      return ns;
    },
  };
  return world;
}

async function stopPlane(h: OverlayHost, revoke: boolean): Promise<void> {
  const p = h.plane;
  if (!p) return;
  h.plane = undefined;
  await p.driver.stop();
  await p.registration.stop({ revoke });
  await p.store.close();
}

/** One ping (bounded); true when answered. Extra args go before the target (e.g. -M do -s 1400). */
export async function ping(from: Netns, to: string, extra: string[] = [], waitSeconds = 1): Promise<boolean> {
  const r = await from.tryExec('ping', ['-c', '1', '-W', String(waitSeconds), '-n', '-q', ...extra, to], { timeoutMs: 5_000 });
  return r.code === 0;
}

/** Ping until it answers (or `ms` passes); resolves whether it did. */
export async function pingUntil(from: Netns, to: string, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ping(from, to, [], 1)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Poll `pred` every 50 ms until true or `ms` passed. */
export async function until(pred: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The remote MACs (FDB self entries with a dst) on a host's VXLAN device. */
export async function fdbMacs(w: World, h: OverlayHost, vxlan: string): Promise<string[]> {
  const entries = await w.k.ns(h.ns.path).fdb({ dev: vxlan }).catch(() => []);
  return entries.filter((e) => e.self && e.dst).map((e) => e.mac).sort();
}
