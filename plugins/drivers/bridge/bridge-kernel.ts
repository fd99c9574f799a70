// The bridge driver's kernel recipes over netlink/: a network's bridge, gateway addresses and
// sysctls; an endpoint's veth pair in engine mode (both ends on the host) or netns mode (one
// process, peer made inside the container). No store, no firewall: bridge.ts sequences those.
import {
  confSysctlKey,
  isNotFound,
  KernelError,
  type Kernel,
  type Link,
  type NetnsHandle,
} from '../../../netlink/index.js';
import { DriverError } from '../common/errors.js';
import type { DriverLogger } from '../common/log.js';
import type { BridgeNetworkConfig } from './config.js';

/** What ensureNetwork changed (for rollback and reconcile reports). */
export interface EnsureNetworkOutcome {
  bridgeCreated: boolean;
  /** Gateway addresses ("10.1.0.1/24") that were missing and were added. */
  addressesAdded: string[];
  /** The bridge link after the changes. */
  link: Link;
  /** Set when the bridge existed without our link group (a user's): how it was before. */
  adopted?: AdoptedBridge;
}

/** A user's bridge as a network found it: its MTU and up state come back when the network goes. */
export interface AdoptedBridge {
  mtu: number;
  up: boolean;
}

/** An endpoint's interface as the recipes need it. */
export interface VethPlan {
  hostVeth: string;
  /** engine mode: the peer's name in the host namespace; netns mode: the name inside. */
  peer: string;
  mac: string;
  /** "addr/prefix" with family. */
  addresses: { cidr: string; family: 4 | 6 }[];
}

/** Link groups that mark what the bridge driver made (reconcile removes unrecorded ones). */
export interface LinkGroups {
  bridge: number;
  veth: number;
}

/** Kernel operations of the bridge driver in one host namespace. */
export class BridgeKernel {
  readonly host: NetnsHandle;
  /** Bridge name → ifindex, read once per bridge; dropped when a use finds it stale. */
  private readonly bridgeIndex = new Map<string, number>();

  constructor(
    private readonly kernel: Kernel,
    /** The host namespace (path), undefined = this process's own. */
    private readonly hostNetns: string | undefined,
    readonly groups: LinkGroups,
    private readonly log: DriverLogger,
  ) {
    this.host = kernel.ns(hostNetns ?? null);
  }

  /** The host namespace as a path usable from inside another namespace. */
  get hostPath(): string {
    return this.hostNetns ?? this.kernel.selfNetnsPath;
  }

  /**
   * Make the bridge, its sysctls and gateway addresses exist as `cfg` says (idempotent). A bridge
   * we create carries our link group; an existing bridge of another group is used but not owned.
   */
  async ensureNetwork(cfg: BridgeNetworkConfig): Promise<EnsureNetworkOutcome> {
    const existing = await this.host.link(cfg.bridge);
    if (existing && existing.kind !== 'bridge') {
      throw new DriverError('invalid-config', `invalid bridge ${JSON.stringify(cfg.bridge)}: an interface of kind ${existing.kind ?? 'plain'} has this name`, { field: 'bridge', value: cfg.bridge });
    }
    const adopted = existing && existing.group !== this.groups.bridge ? { mtu: existing.mtu, up: existing.up } : undefined;
    const { link: first, created } = await this.host.ensureBridge(cfg.bridge, { mtu: cfg.mtu, group: this.groups.bridge, up: true });
    this.bridgeIndex.set(cfg.bridge, first.index);
    try {
      await this.applyNetworkSysctls(cfg);
      const have = new Set((await this.host.addresses({ dev: cfg.bridge })).map((a) => a.cidr));
      const want = cfg.subnets.flatMap((s) => (s.gateway ? [{ cidr: `${s.gateway}/${s.prefixLen}`, family: s.family }] : []));
      const missing = want.filter((w) => !have.has(w.cidr));
      if (missing.length > 0) {
        // IPv6 gateways skip DAD: the address is allocated, and a tentative gateway would delay joins.
        await this.host.batch((b) => missing.forEach((m) => b.addrReplace(cfg.bridge, m.cidr, { noDad: m.family === 6 })));
      }
      return { bridgeCreated: created, addressesAdded: missing.map((m) => m.cidr), link: first, ...(adopted ? { adopted } : {}) };
    } catch (err) {
      // The caller only learns what was made from the outcome: a bridge made here goes again
      // here, and a user's bridge gets its MTU and up state back.
      if (created) await this.deleteBridge(cfg.bridge).catch((e: Error) => this.log.warn({ network: cfg.id, err: e.message }, 'rollback: bridge not removed'));
      if (adopted) await this.restoreBridge(cfg.bridge, adopted).catch((e: Error) => this.log.warn({ network: cfg.id, err: e.message }, 'rollback: bridge not restored'));
      throw err;
    }
  }

  /** Give a user's bridge back the MTU and up state it had (missing = done). */
  async restoreBridge(name: string, was: AdoptedBridge): Promise<void> {
    const link = await this.host.link(name);
    if (!link) return;
    const change: { mtu?: number; up?: boolean } = {};
    if (link.mtu !== was.mtu) change.mtu = was.mtu;
    if (link.up !== was.up) change.up = was.up;
    if (Object.keys(change).length > 0) await this.host.linkSet(name, change);
  }

  private async applyNetworkSysctls(cfg: BridgeNetworkConfig): Promise<void> {
    const values: Record<string, number> = {};
    const hasV4 = cfg.subnets.some((s) => s.family === 4);
    if (hasV4 && !cfg.internal) values['net.ipv4.ip_forward'] = 1;
    if (cfg.ipv6) {
      values[confSysctlKey(6, cfg.bridge, 'disable_ipv6')] = 0;
      // CVE-2020-10749: never let a container's router advertisement configure the host.
      values[confSysctlKey(6, cfg.bridge, 'accept_ra')] = 0;
      if (!cfg.internal) values['net.ipv6.conf.all.forwarding'] = 1;
    }
    await this.host.sysctlSetMany(values);
    if (!cfg.ipv6) {
      // An IPv4-only bridge still runs IPv6 (link-local, forwarding off): with the default
      // accept_ra=1 a container's router advertisement would give the host an address and a
      // default route (CVE-2020-10749). A kernel without IPv6 has nothing to protect.
      try {
        await this.host.sysctlSetMany({ [confSysctlKey(6, cfg.bridge, 'accept_ra')]: 0 });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (!cfg.icc) {
      // ICC=false is a FORWARD rule; bridged frames reach FORWARD only with bridge-nf-call on.
      const nf: Record<string, number> = { 'net.bridge.bridge-nf-call-iptables': 1 };
      if (cfg.ipv6) nf['net.bridge.bridge-nf-call-ip6tables'] = 1;
      try {
        await this.host.sysctlSetMany(nf);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.log.warn({ network: cfg.id }, 'br_netfilter is not available: icc=false cannot be enforced for bridged traffic');
      }
    }
  }

  /**
   * Apply `name=value` settings a firewall's rules rely on (forwarding, route_localnet on our
   * bridges, bridge-nf-call). bridge-nf-call keys are missing without br_netfilter: logged.
   */
  async applySysctls(list: readonly { name: string; value: string }[], networkId: string): Promise<void> {
    const isNf = (n: string) => n.startsWith('net.bridge.') || n.startsWith('net/bridge/');
    await this.host.sysctlSetMany(Object.fromEntries(list.filter((s) => !isNf(s.name)).map((s) => [s.name, s.value])));
    const nf = list.filter((s) => isNf(s.name));
    if (nf.length === 0) return;
    try {
      await this.host.sysctlSetMany(Object.fromEntries(nf.map((s) => [s.name, s.value])));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.log.warn({ network: networkId }, 'br_netfilter is not available: firewall rules do not see bridged traffic');
    }
  }

  /**
   * Undo a network: delete the bridge when it carries our group (its addresses and ports go
   * with it); otherwise remove our gateway addresses from it and give it back the MTU and up
   * state it had when adopted (`adopted`, from the record). Missing = done.
   */
  async removeNetwork(cfg: BridgeNetworkConfig, adopted?: AdoptedBridge): Promise<void> {
    this.bridgeIndex.delete(cfg.bridge);
    const link = await this.host.link(cfg.bridge);
    if (!link) return;
    if (link.group === this.groups.bridge && link.kind === 'bridge') {
      await this.host.linkDel(cfg.bridge, { missingOk: true });
      return;
    }
    for (const s of cfg.subnets) {
      if (!s.gateway) continue;
      try {
        await this.host.addrDel(cfg.bridge, `${s.gateway}/${s.prefixLen}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (adopted) await this.restoreBridge(cfg.bridge, adopted);
  }

  /** Remove gateway addresses added by a failed create (the bridge itself is deleted separately). */
  async removeAddresses(bridge: string, cidrs: string[]): Promise<void> {
    for (const c of cidrs) {
      try {
        await this.host.addrDel(bridge, c);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /** Delete a bridge we just created (rollback). */
  async deleteBridge(name: string): Promise<void> {
    this.bridgeIndex.delete(name);
    await this.host.linkDel(name, { missingOk: true });
  }

  /** The bridge's ifindex (cached); null when the bridge does not exist. */
  async bridgeIndexOf(name: string): Promise<number | null> {
    const cached = this.bridgeIndex.get(name);
    if (cached !== undefined) return cached;
    const link = await this.host.link(name);
    if (!link) return null;
    this.bridgeIndex.set(name, link.index);
    return link.index;
  }

  forgetBridge(name: string): void {
    this.bridgeIndex.delete(name);
  }

  /**
   * Engine mode: both ends in the host namespace, host end up on the bridge (hairpin if asked),
   * peer with MTU and MAC, left down for the engine to move and rename. One process.
   */
  async addEngineVeth(cfg: BridgeNetworkConfig, p: VethPlan): Promise<void> {
    await this.host.batch((b) => {
      b.linkAdd({
        kind: 'veth',
        name: p.hostVeth,
        master: cfg.bridge,
        up: true,
        mtu: cfg.mtu,
        group: this.groups.veth,
        peer: { name: p.peer, mtu: cfg.mtu, mac: p.mac },
      });
      if (cfg.hairpin) b.bridgePortSet(p.hostVeth, { hairpin: true });
    });
  }

  /**
   * Netns mode: ONE process inside the container namespace creates the pair with the host end
   * sent to the host namespace already enslaved (by ifindex), then addresses, up, default routes.
   * Hairpin needs a second process in the host namespace.
   */
  async addNetnsVeth(cfg: BridgeNetworkConfig, p: VethPlan, ctr: NetnsHandle, bridgeIndex: number, routes: { via: string }[]): Promise<void> {
    await ctr.batch((b) => {
      b.linkAdd({
        kind: 'veth',
        name: p.hostVeth,
        netns: this.hostPath,
        masterIndex: bridgeIndex,
        up: true,
        mtu: cfg.mtu,
        group: this.groups.veth,
        peer: { name: p.peer, mtu: cfg.mtu, mac: p.mac },
      });
      for (const a of p.addresses) b.addrAdd(p.peer, a.cidr, { noDad: a.family === 6 });
      b.linkSetUp(p.peer);
      for (const r of routes) b.routeAdd({ dst: 'default', via: r.via });
    });
    if (cfg.hairpin) await this.host.bridgePortSet(p.hostVeth, { hairpin: true });
  }

  /**
   * Delete an endpoint's host end (the pair goes as a whole). Missing = done. Returns once the
   * pair has left both namespaces, not after the kernel's RCU wait for the freed devices (#5).
   */
  deleteVeth(name: string): Promise<boolean> {
    return this.host.linkDel(name, { missingOk: true, returnWhenGone: true });
  }

  /** Re-attach a host end to its bridge after the bridge was re-created (reconcile). */
  async reattach(cfg: BridgeNetworkConfig, hostVeth: string): Promise<void> {
    await this.host.batch((b) => {
      b.linkSet(hostVeth, { master: cfg.bridge, up: true });
      if (cfg.hairpin) b.bridgePortSet(hostVeth, { hairpin: true });
    });
  }
}

/** True when a batch failed on its first line (so nothing of it was applied). */
export function failedOnFirstLine(err: unknown, firstLinePrefix: string): boolean {
  return err instanceof KernelError && typeof err.details.line === 'string' && err.details.line.startsWith(firstLinePrefix);
}

/** A conflict naming the interface that already exists inside the container. */
export function interfaceExists(ifname: string, netnsPath: string): DriverError {
  return new DriverError('interface-exists', `interface ${ifname} already exists in ${netnsPath}`, { field: 'ifname', value: ifname });
}
