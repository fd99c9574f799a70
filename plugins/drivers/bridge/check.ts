// CHECK: compare an endpoint's record with the live kernel state (the bridge, the host end on
// it, and in netns mode the interface inside the container with its MAC, MTU and addresses).
// Reads only; returns what differs, so a front end can answer CNI CHECK or `doctor`.
import type { Kernel } from '../../../netlink/index.js';
import type { EndpointRecord } from '../common/records.js';
import type { BridgeKernel } from './bridge-kernel.js';
import type { BridgeNetworkConfig } from './config.js';

/** Every difference between the records and the kernel, one sentence each ([] = all as recorded). */
export async function checkEndpoint(kernel: Kernel, k: BridgeKernel, cfg: BridgeNetworkConfig, ep: EndpointRecord): Promise<string[]> {
  const problems: string[] = [];
  const br = await k.host.link(cfg.bridge);
  if (!br) return [`bridge ${cfg.bridge} does not exist`];
  if (!br.up) problems.push(`bridge ${cfg.bridge} is down`);
  if (!ep.sandbox) return [...problems, `endpoint ${ep.id} is not joined`];
  const host = ep.hostVeth ? await k.host.link(ep.hostVeth) : null;
  if (!host) return [...problems, `host interface ${ep.hostVeth ?? '?'} does not exist`];
  if (host.master !== cfg.bridge) problems.push(`host interface ${host.name} is not on ${cfg.bridge} (master ${host.master ?? 'none'})`);
  if (!host.up) problems.push(`host interface ${host.name} is down`);
  if (host.mtu !== cfg.mtu) problems.push(`host interface ${host.name} has MTU ${host.mtu}, not ${cfg.mtu}`);
  if (cfg.hairpin && !host.bridgePort?.hairpin) problems.push(`host interface ${host.name} has no hairpin mode`);
  if (ep.sandbox.mode !== 'netns' || !ep.sandbox.netnsPath || !ep.ifname) return problems;
  const ctr = kernel.ns(ep.sandbox.netnsPath);
  const inner = await ctr.link(ep.ifname);
  if (!inner) return [...problems, `interface ${ep.ifname} does not exist in ${ep.sandbox.netnsPath}`];
  if (ep.mac && inner.mac !== ep.mac) problems.push(`interface ${ep.ifname} has MAC ${inner.mac ?? '?'}, not ${ep.mac}`);
  if (inner.mtu !== cfg.mtu) problems.push(`interface ${ep.ifname} has MTU ${inner.mtu}, not ${cfg.mtu}`);
  if (!inner.up) problems.push(`interface ${ep.ifname} is down`);
  const have = new Set((await ctr.addresses({ dev: ep.ifname })).map((a) => a.cidr));
  for (const a of ep.addresses) if (!have.has(a)) problems.push(`interface ${ep.ifname} lacks address ${a}`);
  return problems;
}
