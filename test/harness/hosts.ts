// N "host" namespaces on one underlay: a bridge in a switch namespace and a veth per
// host, all created inside the test's namespaces (never in the root one). For two
// hosts joined point to point, `NetnsSet.link` is enough.
import { HarnessError } from './harness-error.js';
import type { Netns, NetnsSet } from './netns.js';

export interface UnderlayHost {
  ns: Netns;
  /** The host's underlay address, without prefix length (e.g. "10.99.0.1"). */
  address: string;
  /** The host's underlay interface name. */
  ifname: string;
}

export interface UnderlayOptions {
  /** First three octets of the /24 the hosts share (default "10.99.0"); host i gets .(i+1). */
  prefix?: string;
  /** Interface name inside each host (default "eth0"). */
  ifname?: string;
  mtu?: number;
}

const PREFIX = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IFNAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;

/**
 * Make `count` hosts `h0…h(count-1)` plus a switch namespace `sw` holding bridge `br0`,
 * each host attached with a veth. The namespaces belong to `set`: its cleanup removes all.
 */
export async function makeHosts(set: NetnsSet, count: number, opts: UnderlayOptions = {}): Promise<UnderlayHost[]> {
  const prefix = opts.prefix ?? '10.99.0';
  const ifname = opts.ifname ?? 'eth0';
  const mtu = String(opts.mtu ?? 1500);
  const m = PREFIX.exec(prefix);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new HarnessError('harness-bad-prefix', 'bad-request', `prefix ${prefix} must be three octets`);
  if (!IFNAME.test(ifname)) throw new HarnessError('harness-bad-ifname', 'bad-request', `interface name ${ifname} is not valid`);
  if (!Number.isInteger(count) || count < 1 || count > 200) throw new HarnessError('harness-bad-count', 'bad-request', `host count ${count} out of 1..200`);
  const sw = await set.add('sw');
  await sw.ip('link', 'add', 'br0', 'mtu', mtu, 'type', 'bridge');
  await sw.ip('link', 'set', 'br0', 'up');
  const hosts: UnderlayHost[] = [];
  for (let i = 0; i < count; i++) {
    const ns = await set.add(`h${i}`);
    const port = `p${i}`;
    await sw.ip('link', 'add', port, 'mtu', mtu, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns.name);
    await sw.ip('link', 'set', port, 'master', 'br0', 'up');
    const address = `${prefix}.${i + 1}`;
    await ns.ip('link', 'set', ifname, 'mtu', mtu);
    await ns.ip('addr', 'add', `${address}/24`, 'dev', ifname);
    await ns.ip('link', 'set', ifname, 'up');
    hosts.push({ ns, address, ifname });
  }
  return hosts;
}
