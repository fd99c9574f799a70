// The overlay's kernel recipes over netlink/, next to the bridge driver's (bridge + veth come from
// bridge-kernel.ts): the VXLAN device of a network, the distributed gateway's MAC on the bridge,
// and remote endpoints as FDB + neighbour entries (PeerTable). No store, no firewall here.
import { isNotFound, type NetnsHandle } from '../../../netlink/index.js';
import type { BridgeKernel } from '../bridge/bridge-kernel.js';
import type { DriverLogger } from '../common/log.js';
import type { OverlayNetworkConfig } from './config.js';
import type { InstalledPeer, LocalNetwork, PeerDiff, PeerTable } from './peer-entries.js';

/** This host's underlay as found once at start-up. */
export interface Underlay {
  /** Local VTEP address; null = none (the host works alone). */
  advertise: string | null;
  /** The interface holding it (the VXLAN devices' lower device). */
  dev?: string;
  /** Its MTU (undefined when there is no underlay interface). */
  mtu?: number;
  /** UDP port of this host's VXLAN devices. */
  port: number;
  /** MAC of this host's VXLAN devices. */
  vtepMac?: string;
}

/** Find the interface holding `advertise` in the host namespace, and its MTU. */
export async function detectUnderlay(host: NetnsHandle, advertise: string | null, port: number, vtepMac?: string): Promise<Underlay> {
  const base: Underlay = { advertise, port, ...(vtepMac ? { vtepMac } : {}) };
  if (!advertise) return base;
  const addr = (await host.addresses({ family: 4 })).find((a) => a.address === advertise);
  if (!addr) return base;
  const link = await host.link(addr.dev);
  return { ...base, dev: addr.dev, ...(link ? { mtu: link.mtu } : {}) };
}

/** Kernel operations of the overlay in one host namespace. */
export class OverlayKernel implements PeerTable {
  constructor(
    readonly bridges: BridgeKernel,
    private readonly underlay: Underlay,
    /** Link group of our VXLAN devices. */
    readonly vxlanGroup: number,
    private readonly log: DriverLogger,
  ) {}

  get host(): NetnsHandle {
    return this.bridges.host;
  }

  /**
   * Make the network's bridge (bridge driver recipe: gateway addresses, sysctls), give it the
   * distributed gateway's MAC, and make its VXLAN device on it (VNI, local VTEP, port, no
   * learning, ARP/ND proxy from the neighbour table). Idempotent; a VXLAN device with other
   * settings is made again. Resolves what was created.
   */
  async ensure(cfg: OverlayNetworkConfig): Promise<{ bridgeCreated: boolean; vxlanCreated: boolean }> {
    const r = await this.bridges.ensureNetwork(cfg.bridge);
    if (r.link.mac !== cfg.gatewayMac) await this.host.linkSetMac(cfg.bridge.bridge, cfg.gatewayMac);
    const u = this.underlay;
    const have = await this.host.link(cfg.vxlan);
    const v = have?.vxlan;
    const drifted =
      have !== null &&
      (have.kind !== 'vxlan' || v?.vni !== cfg.vni || (v?.local ?? null) !== u.advertise || (v?.port ?? 4789) !== u.port || (v?.dev ?? undefined) !== u.dev || v?.learning !== false);
    if (drifted) {
      this.log.warn({ network: cfg.id, vxlan: cfg.vxlan }, 'VXLAN device has other settings; making it again');
      await this.host.linkDel(cfg.vxlan, { missingOk: true });
    }
    const { created } = await this.host.ensureLink({
      kind: 'vxlan',
      name: cfg.vxlan,
      vni: cfg.vni,
      ...(u.advertise ? { local: u.advertise } : {}),
      port: u.port,
      learning: false,
      proxy: true,
      ...(u.dev ? { dev: u.dev } : {}),
      mtu: cfg.bridge.mtu,
      ...(u.vtepMac ? { mac: u.vtepMac } : {}),
      group: this.vxlanGroup,
      master: cfg.bridge.bridge,
      up: true,
    });
    return { bridgeCreated: r.bridgeCreated, vxlanCreated: created || drifted };
  }

  /** Remove a network's VXLAN device and bridge (the bridge only when it is ours). Missing = done. */
  async remove(cfg: OverlayNetworkConfig): Promise<void> {
    await this.host.linkDel(cfg.vxlan, { missingOk: true });
    await this.bridges.removeNetwork(cfg.bridge);
  }

  // ---- PeerTable ----

  async read(net: LocalNetwork): Promise<Map<string, InstalledPeer>> {
    let fdb, neigh;
    try {
      [fdb, neigh] = await Promise.all([this.host.fdb({ dev: net.vxlan }), this.host.neighbours({ dev: net.vxlan })]);
    } catch (err) {
      if (isNotFound(err)) return new Map();
      throw err;
    }
    const out = new Map<string, InstalledPeer>();
    const entry = (mac: string) => {
      const m = mac.toLowerCase();
      let e = out.get(m);
      if (!e) out.set(m, (e = { mac: m, master: false, ips: [] }));
      return e;
    };
    for (const f of fdb) {
      if (f.self && f.dst && f.mac !== '00:00:00:00:00:00') {
        const e = entry(f.mac);
        e.vtep = f.dst;
        const p = (f.raw as { port?: unknown }).port;
        e.port = typeof p === 'number' ? p : net.port;
      } else if (!f.self && f.state === 'static') {
        entry(f.mac).master = true;
      }
    }
    for (const n of neigh) if (n.permanent && n.lladdr) entry(n.lladdr).ips.push(n.dst);
    for (const e of out.values()) e.ips.sort();
    return out;
  }

  /** One `bridge -batch` (FDB), then one `ip -batch` (neighbours). */
  async apply(net: LocalNetwork, d: PeerDiff): Promise<void> {
    const dev = net.vxlan;
    await this.host.batch((b) => {
      for (const e of d.remove) {
        if (e.vtep) b.fdbDel({ mac: e.mac, dev, dst: e.vtep, target: 'self' });
        if (e.master) b.fdbDel({ mac: e.mac, dev, target: 'master' });
      }
      for (const e of d.put) {
        b.fdbReplace({ mac: e.mac, dev, dst: e.vtep, target: 'self', ...(e.port !== net.port ? { port: e.port } : {}) });
        b.fdbReplace({ mac: e.mac, dev, target: 'master', state: 'static' });
      }
      for (const e of d.remove) for (const ip of e.ips) b.neighDel({ dst: ip, dev });
      for (const ip of d.dropIps) b.neighDel({ dst: ip, dev });
      for (const e of d.put) for (const ip of e.ips) b.neighReplace({ dst: ip, lladdr: e.mac, dev });
    });
  }
}
