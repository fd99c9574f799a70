// Kernel settings the firewall's rules rely on, as data: the driver applies them through
// netlink (or applySysctls does it with `sysctl -w` inside the target namespace).
import type { NetworkState } from './build.js';
import type { NetnsTools } from './exec.js';
import { ifname } from './validate.js';

export interface Sysctl {
  name: string;
  value: string;
}

/**
 * - ip_forward / IPv6 forwarding: containers reach out and published ports reach in.
 * - route_localnet on each IPv4 bridge only (never "all"): lets 127.0.0.1-published ports be
 *   DNAT'd to the bridge; the raw-table drop keeps neighbours off 127.0.0.0/8 (CVE-2020-8558).
 * - bridge-nf-call-ip(6)tables: bridged container-to-container traffic passes FORWARD, where
 *   ICC off and links are enforced.
 */
export function requiredSysctls(networks: readonly NetworkState[], hasLinks: boolean): Sysctl[] {
  const out: Sysctl[] = [];
  const v4 = networks.filter((n) => n.subnets.some((s) => s.family === 4));
  const v6 = networks.filter((n) => n.subnets.some((s) => s.family === 6));
  const bridged = hasLinks || networks.some((n) => !n.icc);
  if (v4.length) out.push({ name: 'net.ipv4.ip_forward', value: '1' });
  if (v6.length) out.push({ name: 'net.ipv6.conf.all.forwarding', value: '1' });
  // A dot in an interface name would split a dotted sysctl name: use the slash form then.
  for (const n of v4) {
    const br = ifname(n.bridge);
    out.push({ name: br.includes('.') ? `net/ipv4/conf/${br}/route_localnet` : `net.ipv4.conf.${br}.route_localnet`, value: '1' });
  }
  if (bridged && v4.length) out.push({ name: 'net.bridge.bridge-nf-call-iptables', value: '1' });
  if (bridged && v6.length) out.push({ name: 'net.bridge.bridge-nf-call-ip6tables', value: '1' });
  return out;
}

/** Apply settings with `sysctl -w name=value` in the tools' namespace (one spawn). */
export async function applySysctls(tools: NetnsTools, settings: readonly Sysctl[]): Promise<void> {
  if (settings.length === 0) return;
  await tools.run('sysctl', ['-q', '-w', ...settings.map((s) => `${s.name}=${s.value}`)]);
}
