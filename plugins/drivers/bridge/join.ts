// Joining an endpoint to its sandbox: the veth plan, the two modes (engine: both ends on the
// host for the engine to move; netns: made straight into the container), their retry of a stale
// leftover or a re-created bridge, and the answer. bridge.ts owns the record and the rollback.
import { isExists, isNotFound, validateIfName, validateNetnsPath, type Kernel } from '../../../netlink/index.js';
import { invalidConfig } from '../common/errors.js';
import type { DriverLogger } from '../common/log.js';
import { macFromAddress, vethNames } from '../common/naming.js';
import type { EndpointRecord } from '../common/records.js';
import { failedOnFirstLine, interfaceExists, type BridgeKernel, type VethPlan } from './bridge-kernel.js';
import type { BridgeNetworkConfig } from './config.js';

/** Where a joined endpoint's interface goes. */
export type JoinTarget =
  /** The engine moves the interface itself (Docker): both ends are made in the host namespace. */
  | { mode: 'engine' }
  /** The driver makes the interface inside `netnsPath` as `ifname` (CNI). */
  | { mode: 'netns'; netnsPath: string; ifname: string; defaultRoute?: boolean };

export interface JoinResult {
  /** Host end of the pair, on the bridge. */
  hostVeth: string;
  /** engine mode: the interface the engine must move into the sandbox (Docker's SrcName). */
  srcName?: string;
  /** netns mode: the interface inside the container. */
  ifname?: string;
  mac: string;
  addresses: string[];
  /** The network's gateways; absent on internal networks (no route out). */
  gateways: { ipv4?: string; ipv6?: string };
  mtu: number;
}

/** The interface an endpoint gets: names from its id, MAC and addresses from its record. */
export function planVeth(ep: EndpointRecord, target: JoinTarget): VethPlan {
  const names = vethNames(ep.id);
  return {
    hostVeth: ep.hostVeth ?? names.host,
    peer: target.mode === 'engine' ? names.peer : target.ifname,
    mac: ep.mac ?? macFromAddress(ep.addresses[0]!.split('/')[0]!),
    addresses: ep.addresses.map((c) => ({ cidr: c, family: c.includes(':') ? 6 : 4 })),
  };
}

/** The kernel side of join, with one retry after removing a stale leftover or re-making the bridge. */
export class VethJoiner {
  constructor(
    private readonly kernel: Kernel,
    private readonly k: BridgeKernel,
    /** Re-make a network's bridge (and rules) that has gone missing. */
    private readonly realise: (cfg: BridgeNetworkConfig) => Promise<unknown>,
    private readonly log: DriverLogger,
  ) {}

  /** engine mode; `state.created` says whether a rollback must delete the pair. */
  async engine(cfg: BridgeNetworkConfig, plan: VethPlan, state: { created: boolean }): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        state.created = true;
        await this.k.addEngineVeth(cfg, plan);
        return;
      } catch (err) {
        if (!failedOnFirstLine(err, `link add name ${plan.hostVeth} `)) throw err;
        state.created = false;
        if (attempt > 0) throw err;
        if (isNotFound(err)) await this.realise(cfg); // the bridge is gone: make it again
        else if (isExists(err)) await this.removeStaleVeth(plan, plan.peer);
        else throw err;
      }
    }
  }

  /** netns mode; 'interface-exists' when ifname is taken inside. */
  async netns(cfg: BridgeNetworkConfig, plan: VethPlan, t: Extract<JoinTarget, { mode: 'netns' }>, state: { created: boolean }): Promise<void> {
    const ctr = this.kernel.ns(t.netnsPath);
    const routes =
      cfg.internal || t.defaultRoute === false
        ? []
        : cfg.subnets.filter((s) => s.gateway && plan.addresses.some((a) => a.family === s.family)).map((s) => ({ via: s.gateway! }));
    for (let attempt = 0; ; attempt++) {
      let index = await this.k.bridgeIndexOf(cfg.bridge);
      if (index === null) {
        await this.realise(cfg);
        index = (await this.k.bridgeIndexOf(cfg.bridge))!;
      }
      try {
        state.created = true;
        await this.k.addNetnsVeth(cfg, plan, ctr, index, routes);
        return;
      } catch (err) {
        if (!failedOnFirstLine(err, `link add name ${plan.hostVeth} `)) throw err;
        state.created = false;
        if (isExists(err) && (await ctr.link(t.ifname))) throw interfaceExists(t.ifname, t.netnsPath);
        if (attempt > 0) throw err;
        if (isExists(err)) await this.removeStaleVeth(plan);
        else if (isNotFound(err)) this.k.forgetBridge(cfg.bridge); // stale ifindex: read it again
        else throw err;
      }
    }
  }

  /** A host end left by a join that crashed before recording: ours by name, not joined. */
  private async removeStaleVeth(plan: VethPlan, peer?: string): Promise<void> {
    this.log.warn({ hostVeth: plan.hostVeth }, 'removing a stale veth left by an unfinished join');
    await this.k.deleteVeth(plan.hostVeth);
    if (peer) await this.k.deleteVeth(peer);
  }
}

/** Validate a join target (netns path and ifname reach command lines). */
export function checkTarget(t: JoinTarget): void {
  if (!t || (t.mode !== 'engine' && t.mode !== 'netns')) throw invalidConfig('join mode', (t as { mode?: unknown })?.mode, 'expected engine or netns');
  if (t.mode === 'engine') return;
  try {
    validateNetnsPath(t.netnsPath, 'netnsPath');
  } catch {
    throw invalidConfig('netnsPath', t.netnsPath, 'expected an absolute namespace path');
  }
  try {
    validateIfName(t.ifname, 'ifname');
  } catch (err) {
    throw invalidConfig('ifname', t.ifname, (err as Error).message.replace(/^invalid .*?: /, ''));
  }
}

/** The answer of join: the interface, MAC, addresses, gateways (none on internal networks), MTU. */
export function joinResult(cfg: BridgeNetworkConfig, plan: VethPlan, target: JoinTarget): JoinResult {
  const gateways: JoinResult['gateways'] = {};
  if (!cfg.internal) {
    for (const s of cfg.subnets) {
      if (!s.gateway || !plan.addresses.some((a) => a.family === s.family)) continue;
      if (s.family === 4) gateways.ipv4 ??= s.gateway;
      else gateways.ipv6 ??= s.gateway;
    }
  }
  return {
    hostVeth: plan.hostVeth,
    ...(target.mode === 'engine' ? { srcName: plan.peer } : { ifname: plan.peer }),
    mac: plan.mac,
    addresses: plan.addresses.map((a) => a.cidr),
    gateways,
    mtu: cfg.mtu,
  };
}
