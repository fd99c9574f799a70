// Reconciling the overlay's local kernel state with the store after a restart or a crash: every
// network with members here gets its bridge and VXLAN device again, host veth ends go back on
// their bridge, and links of our groups that no record explains are deleted. Peer entries are
// not touched here: attaching a network makes the programmer read the device and fix them.
import type { Link } from '../../../netlink/index.js';
import type { DriverLogger } from '../common/log.js';
import type { RecordStore } from '../common/record-store.js';
import type { EndpointRecord } from '../common/records.js';
import { configFromRecord, type OverlayNetworkConfig } from './config.js';
import type { OverlayKernel } from './overlay-kernel.js';

/** Link groups marking what the overlay made. */
export interface OverlayLinkGroups {
  bridge: number;
  veth: number;
  vxlan: number;
}

/** What reconcile did; `errors` holds one line per object it could not fix. */
export interface OverlayReconcileReport {
  /** Networks realised on this host (bridge + VXLAN ensured, peers attached). */
  networks: string[];
  /** Networks whose bridge or VXLAN device was missing and was made again. */
  recreated: string[];
  /** Host veth ends put back on their bridge. */
  reattached: string[];
  /** Links of ours that no record explains, deleted. */
  removed: string[];
  /** Joined endpoints whose host end is gone. */
  endpointsBroken: string[];
  errors: string[];
}

export interface OverlayReconcileDeps {
  hostId: string;
  records: RecordStore;
  kernel: OverlayKernel;
  groups: OverlayLinkGroups;
  /** Ensure one network on this host; resolves true when something had to be created. */
  realise: (cfg: OverlayNetworkConfig) => Promise<boolean>;
  log: DriverLogger;
  /** Delete links of ours that no record explains (default true; false while verbs may run). */
  prune?: boolean;
}

/** One reconcile pass (see OverlayDriver.reconcile). */
export async function reconcileOverlay(d: OverlayReconcileDeps): Promise<OverlayReconcileReport> {
  const report: OverlayReconcileReport = { networks: [], recreated: [], reattached: [], removed: [], endpointsBroken: [], errors: [] };
  const nets = (await d.records.listNetworks()).filter((n) => n.driver === 'overlay');
  const local = (await d.records.listAllEndpoints()).filter((e) => e.hostId === d.hostId && e.driver === 'overlay');
  const cfgs = new Map<string, OverlayNetworkConfig>();
  for (const n of nets) {
    if (!local.some((e) => e.networkId === n.id)) continue;
    try {
      const cfg = configFromRecord(n);
      cfgs.set(n.id, cfg);
      if (await d.realise(cfg)) report.recreated.push(n.id);
      report.networks.push(n.id);
    } catch (err) {
      report.errors.push(`network ${n.id}: ${(err as Error).message}`);
    }
  }
  const links = new Map((await d.kernel.host.links()).map((l) => [l.name, l] as const));
  const joined = new Set<string>();
  for (const ep of local) {
    const cfg = cfgs.get(ep.networkId);
    if (!cfg || !ep.sandbox || !ep.hostVeth) continue;
    joined.add(ep.hostVeth);
    await fixPort(d, report, cfg, ep, links.get(ep.hostVeth));
  }
  const wanted = new Set([...cfgs.values()].flatMap((c) => [c.bridge.bridge, c.vxlan]));
  for (const l of d.prune === false ? [] : links.values()) {
    const ours =
      (l.kind === 'bridge' && l.group === d.groups.bridge && !wanted.has(l.name)) ||
      (l.kind === 'vxlan' && l.group === d.groups.vxlan && !wanted.has(l.name)) ||
      (l.kind === 'veth' && l.group === d.groups.veth && !joined.has(l.name));
    if (!ours) continue;
    try {
      await d.kernel.host.linkDel(l.name, { missingOk: true });
      report.removed.push(l.name);
    } catch (err) {
      report.errors.push(`removing ${l.name}: ${(err as Error).message}`);
    }
  }
  d.log.info({ ...report }, 'overlay reconcile done');
  return report;
}

async function fixPort(d: OverlayReconcileDeps, report: OverlayReconcileReport, cfg: OverlayNetworkConfig, ep: EndpointRecord, link: Link | undefined): Promise<void> {
  if (!link) {
    report.endpointsBroken.push(ep.id);
    d.log.warn({ endpoint: ep.id, hostVeth: ep.hostVeth }, 'joined overlay endpoint has no host interface; the container must be re-attached');
    return;
  }
  if (link.master === cfg.bridge.bridge && link.up) return;
  try {
    await d.kernel.bridges.reattach(cfg.bridge, ep.hostVeth!);
    report.reattached.push(ep.hostVeth!);
  } catch (err) {
    report.errors.push(`re-attaching ${ep.hostVeth} to ${cfg.bridge.bridge}: ${(err as Error).message}`);
  }
}
