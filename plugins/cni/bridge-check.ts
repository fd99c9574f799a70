// tsbridge CHECK (SPEC §2): the recorded attachment and prevResult against what is live —
// the container interface (MAC, addresses), the host end on the bridge, the bridge, and the
// network's firewall rules in the backend the daemon recorded (iptables-save, or the nft table).
import type { BridgeDriver } from '../drivers/bridge/bridge.js';
import { configFromRecord } from '../drivers/bridge/config.js';
import { firewallNetwork } from '../drivers/bridge/bridge.js';
import type { Kernel } from '../../netlink/index.js';
import type { BackendKind } from '../../proxy/backend.js';
import { networkChains } from '../../proxy/build.js';
import { NetnsTools } from '../../proxy/exec.js';
import { IptablesBackend } from '../../proxy/iptables.js';
import { NftKernel } from '../../proxy/nft-kernel.js';
import { mergeChains, ruleTag } from '../../proxy/nft-render.js';
import { renderRule } from '../../proxy/render.js';
import { chainKey } from '../../proxy/rules.js';
import { checkNetwork } from '../../proxy/specs.js';
import { parseTsbridgeConf } from './bridge-conf.js';
import { CniError, ErrorCode } from './errors.js';
import { readFirewallBackend, stateDirOfStore } from './host-state.js';
import type { CniRequest } from './skel.js';

function fail(msg: string): CniError {
  return new CniError(ErrorCode.Internal, `tsbridge CHECK: ${msg}`);
}

export interface BridgeCheckInput {
  kernel: Kernel;
  drv: BridgeDriver;
  req: CniRequest;
  networkId: string;
  endpointId: string;
}

/** Throws CniError 3 for an unknown attachment, 999 naming the first difference found. */
export async function checkBridgeAttachment({ kernel, drv, req, networkId, endpointId }: BridgeCheckInput): Promise<void> {
  const { netns, ifname, containerId } = req.env;
  const net = await drv.network(networkId);
  const ep = await drv.endpoint(networkId, endpointId);
  if (!net || !ep?.sandbox) throw new CniError(ErrorCode.UnknownContainer, `tsbridge CHECK: no attachment of container ${containerId} (${ifname}) on network ${req.conf.name}`);
  if (ep.sandbox.netnsPath !== netns) throw fail(`container ${containerId} is attached in ${ep.sandbox.netnsPath}, not ${netns}`);
  const ctr = kernel.ns(netns);
  const link = await ctr.link(ifname);
  if (!link) throw fail(`interface ${ifname} is missing in ${netns}`);
  if (!link.up) throw fail(`interface ${ifname} in ${netns} is down`);
  if (ep.mac && link.mac !== ep.mac) throw fail(`interface ${ifname} has MAC ${link.mac}, recorded ${ep.mac}`);
  const prev = req.prevResult!;
  const mine = (prev.interfaces ?? []).findIndex((i) => i.name === ifname && i.sandbox === netns);
  if (mine >= 0 && prev.interfaces![mine]!.mac && prev.interfaces![mine]!.mac !== link.mac) {
    throw fail(`interface ${ifname} has MAC ${link.mac}, prevResult says ${prev.interfaces![mine]!.mac}`);
  }
  const live = new Set((await ctr.addresses({ dev: ifname })).map((a) => a.cidr));
  const want = [...ep.addresses, ...(prev.ips ?? []).filter((ip) => mine >= 0 && ip.interface === mine).map((ip) => ip.address)];
  for (const a of want) if (!live.has(a)) throw fail(`address ${a} is missing on ${ifname} in ${netns}`);
  const cfg = configFromRecord(net);
  const host = kernel.ns(null);
  const bridge = await host.link(cfg.bridge);
  if (!bridge) throw fail(`bridge ${cfg.bridge} is missing`);
  const veth = ep.hostVeth ? await host.link(ep.hostVeth) : null;
  if (!veth) throw fail(`host interface ${ep.hostVeth ?? '?'} is missing`);
  if (veth.master !== cfg.bridge) throw fail(`host interface ${veth.name} is on ${veth.master ?? 'no bridge'}, not ${cfg.bridge}`);
  const backend = readFirewallBackend(stateDirOfStore(parseTsbridgeConf(req.conf).store)) ?? 'iptables';
  await checkRules(cfg.bridge, checkNetwork(firewallNetwork(cfg)), backend);
}

/** Every rule the network needs is in our chains (other networks' rules may be there too). */
async function checkRules(bridge: string, state: ReturnType<typeof checkNetwork>, backend: BackendKind): Promise<void> {
  if (backend === 'nft') return checkNftRules(bridge, state);
  for (const family of [4, 6] as const) {
    if (!state.subnets.some((s) => s.family === family)) continue;
    const saved = await new IptablesBackend({ family }).dump();
    for (const chain of networkChains([state], family)) {
      const have = new Set(saved.chains.get(chainKey(chain.table, chain.name))?.rules ?? []);
      for (const rule of chain.rules) {
        const text = renderRule(rule, family);
        if (!have.has(text)) throw fail(`IPv${family} rule "-A ${chain.name} ${text}" of bridge ${bridge} is missing`);
      }
    }
  }
}

/** The nft backend: every rule of the network's chains (both families merged) is in our table. */
async function checkNftRules(bridge: string, state: ReturnType<typeof checkNetwork>): Promise<void> {
  const applied = await new NftKernel(new NetnsTools()).dump();
  const by = (f: 4 | 6) => new Map(networkChains([state], f).map((c) => [`${c.table} ${c.name}`, c]));
  const v4 = by(4);
  const v6 = by(6);
  for (const k of new Set([...v4.keys(), ...v6.keys()])) {
    const chain = mergeChains(v4.get(k), v6.get(k));
    const have = new Set(applied.chains.get(chain.name) ?? []);
    for (const rule of chain.rules) {
      if (!have.has(ruleTag(rule))) throw fail(`nft rule "${rule}" (chain ${chain.name}) of bridge ${bridge} is missing`);
    }
  }
}
