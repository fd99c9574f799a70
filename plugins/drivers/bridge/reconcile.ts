// Reconciling the bridge driver's kernel state with this host's records after a restart, a
// crash or someone's `ip link del`: desired = records, actual = links carrying our link groups.
// Limits: a joined endpoint whose host end vanished cannot be rebuilt (its peer died with it).
import type { Link } from '../../../netlink/index.js';
import type { DriverLogger } from '../common/log.js';
import type { RecordStore } from '../common/record-store.js';
import type { EndpointRecord } from '../common/records.js';
import type { BridgeKernel } from './bridge-kernel.js';
import { configFromRecord, type BridgeNetworkConfig } from './config.js';

/** What reconcile did; `errors` holds one line per object it could not fix. */
export interface ReconcileReport {
  /** Networks whose bridge was missing and was made again. */
  bridgesCreated: string[];
  /** Host veth ends put back on their bridge. */
  reattached: string[];
  /** Bridges of ours that no record explains, deleted. */
  bridgesRemoved: string[];
  /** Host veth ends of ours that no joined endpoint explains, deleted. */
  vethsRemoved: string[];
  /** Endpoints whose recorded published ports were handed to the firewall again. */
  republished: string[];
  /** Joined endpoints whose host end is gone (their container lost the interface). */
  endpointsBroken: string[];
  errors: string[];
}

export interface ReconcileDeps {
  hostId: string;
  records: RecordStore;
  kernel: BridgeKernel;
  /** Ensure one network's kernel and firewall state; resolves true when the bridge was created. */
  realise: (cfg: BridgeNetworkConfig) => Promise<boolean>;
  /** Hand an endpoint's recorded port bindings to the firewall again (its state is in memory). */
  republish: (ep: EndpointRecord) => Promise<void>;
  log: DriverLogger;
  /**
   * Delete links of ours that no record explains (default true). Only safe when no verb runs at
   * the same time: an ADD makes its links before it records them, so periodic passes skip it.
   */
  prune?: boolean;
}

/** One reconcile pass (see BridgeDriver.reconcile). */
export async function reconcileBridges(d: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { bridgesCreated: [], reattached: [], bridgesRemoved: [], vethsRemoved: [], republished: [], endpointsBroken: [], errors: [] };
  const nets = (await d.records.listNetworks()).filter((n) => n.driver === 'bridge' && n.hostId === d.hostId);
  const cfgs = new Map<string, BridgeNetworkConfig>();
  for (const n of nets) {
    const cfg = configFromRecord(n);
    cfgs.set(n.id, cfg);
    try {
      if (await d.realise(cfg)) report.bridgesCreated.push(cfg.bridge);
    } catch (err) {
      report.errors.push(`network ${n.id} (${cfg.bridge}): ${(err as Error).message}`);
    }
  }
  const links = new Map((await d.kernel.host.links()).map((l) => [l.name, l] as const));
  const joined = new Set<string>();
  for (const ep of await d.records.listAllEndpoints()) {
    const cfg = cfgs.get(ep.networkId);
    if (!cfg || ep.hostId !== d.hostId || ep.driver !== 'bridge' || !ep.sandbox || !ep.hostVeth) continue;
    joined.add(ep.hostVeth);
    await fixPort(d, report, cfg, ep.hostVeth, links.get(ep.hostVeth), ep.id);
    if (ep.ports.length === 0) continue;
    try {
      await d.republish(ep);
      report.republished.push(ep.id);
    } catch (err) {
      report.errors.push(`republishing ports of ${ep.id}: ${(err as Error).message}`);
    }
  }
  const bridges = new Set([...cfgs.values()].map((c) => c.bridge));
  for (const l of d.prune === false ? [] : links.values()) {
    const orphanBridge = l.kind === 'bridge' && l.group === d.kernel.groups.bridge && !bridges.has(l.name);
    const orphanVeth = l.kind === 'veth' && l.group === d.kernel.groups.veth && !joined.has(l.name);
    if (!orphanBridge && !orphanVeth) continue;
    try {
      if (orphanBridge) await d.kernel.deleteBridge(l.name);
      else await d.kernel.deleteVeth(l.name);
      (orphanBridge ? report.bridgesRemoved : report.vethsRemoved).push(l.name);
    } catch (err) {
      report.errors.push(`removing ${l.name}: ${(err as Error).message}`);
    }
  }
  d.log.info({ ...report }, 'bridge reconcile done');
  return report;
}

async function fixPort(d: ReconcileDeps, report: ReconcileReport, cfg: BridgeNetworkConfig, name: string, link: Link | undefined, epId: string): Promise<void> {
  if (!link) {
    report.endpointsBroken.push(epId);
    d.log.warn({ endpoint: epId, hostVeth: name }, 'joined endpoint has no host interface; the container must be re-attached');
    return;
  }
  const hairpinOk = !cfg.hairpin || link.bridgePort?.hairpin === true;
  if (link.master === cfg.bridge && link.up && hairpinOk) return;
  try {
    await d.kernel.reattach(cfg, name);
    report.reattached.push(name);
  } catch (err) {
    report.errors.push(`re-attaching ${name} to ${cfg.bridge}: ${(err as Error).message}`);
  }
}
