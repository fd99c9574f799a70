// Kernel checks of `tsoverlay doctor`: bridge, veth and VXLAN links are tried for real inside a
// temporary namespace the doctor makes and deletes (never in the root namespace); br_netfilter and
// IP forwarding are read as sysctls of the inspected namespace. Reads only, outside the probe
// (and the removal of probe namespaces a killed doctor left behind).
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { Kernel, type LinkSpec } from '../../netlink/index.js';
import { NetnsTools } from '../../proxy/exec.js';
import { fail, firstLine, inScope, pass, type Check, type Scope } from './doctor-check.js';

const NETNS_DIR = '/var/run/netns';

interface Probe {
  name: string;
  module: string;
  spec: LinkSpec;
}

// Names unique to the probe namespace, so nothing else can be touched even by mistake.
const PROBES: Probe[] = [
  { name: 'kernel-bridge', module: 'bridge', spec: { kind: 'bridge', name: 'tsodoc-br0' } },
  { name: 'kernel-veth', module: 'veth', spec: { kind: 'veth', name: 'tsodoc-v0', peer: { name: 'tsodoc-v1' } } },
  // No underlay device or remote: creating the device is what proves the module is there.
  { name: 'kernel-vxlan', module: 'vxlan', spec: { kind: 'vxlan', name: 'tsodoc-vx0', vni: 4242, port: 4789 } },
];

/** The probe namespace's name: recognisable, with the doctor's pid, never reused. */
function probeName(): string {
  return `tsodoc-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
}

const PROBE_NAME = /^tsodoc-([0-9a-z]{1,8})-[0-9a-f]{6}$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Probe namespaces of doctors that were killed mid-probe (their pid no longer runs): deleted, so
 * an interrupted `tsoverlay doctor` leaves nothing behind for long. Returns the names removed.
 */
export async function sweepStaleProbes(root: NetnsTools): Promise<string[]> {
  const names = existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : [];
  const stale = names.filter((n) => {
    const m = PROBE_NAME.exec(n);
    return m !== null && !alive(parseInt(m[1]!, 36));
  });
  for (const n of stale) await root.tryRun('ip', ['netns', 'delete', n]).catch(() => undefined);
  return stale;
}

/** Create each kind of link the drivers need inside a throw-away namespace. */
export async function kernelLinkChecks(kernel: Kernel, scope: Scope): Promise<Check[]> {
  const root = new NetnsTools(undefined, scope.timeoutMs);
  await sweepStaleProbes(root);
  const name = probeName();
  const made = await root.tryRun('ip', ['netns', 'add', name]);
  if (made.code !== 0) {
    const why = `cannot make a probe namespace: ${firstLine(made.stderr) || `ip exited ${made.code}`}`;
    return PROBES.map((p) => fail(p.name, why, 'run `tsoverlay doctor` as root (it needs CAP_SYS_ADMIN and CAP_NET_ADMIN)'));
  }
  try {
    const ns = kernel.ns(`${NETNS_DIR}/${name}`);
    const out: Check[] = [];
    for (const p of PROBES) {
      try {
        await ns.linkAdd(p.spec);
        out.push(pass(p.name, `${p.spec.kind} links can be created (module ${p.module})`));
      } catch (err) {
        out.push(fail(p.name, `cannot create a ${p.spec.kind} link: ${firstLine((err as Error).message)}`, `modprobe ${p.module}`));
      }
    }
    return out;
  } finally {
    // Deleting the namespace deletes every probe link with it.
    await root.tryRun('ip', ['netns', 'delete', name]).catch(() => undefined);
  }
}

/** br_netfilter (bridged traffic through iptables: ICC off, links) and IPv4 forwarding. */
export async function sysctlChecks(kernel: Kernel, scope: Scope): Promise<Check[]> {
  const ns = kernel.ns(scope.netnsPath ?? null);
  const read = (key: string) => ns.sysctlGet(key).then((v) => v, (err: Error) => err);
  const [brnf, forward] = await Promise.all([read('net.bridge.bridge-nf-call-iptables'), read('net.ipv4.ip_forward')]);
  const out: Check[] = [];
  out.push(
    brnf instanceof Error
      ? fail('br-netfilter', 'net.bridge.bridge-nf-call-iptables is missing: br_netfilter is not loaded, so ICC off and container links cannot be enforced on bridges', 'modprobe br_netfilter')
      : pass('br-netfilter', `br_netfilter loaded (bridge-nf-call-iptables = ${brnf})`),
  );
  if (forward instanceof Error) {
    out.push(fail('ip-forward', `cannot read net.ipv4.ip_forward: ${firstLine(forward.message)}`, inScope(scope, 'sysctl -w net.ipv4.ip_forward=1')));
  } else if (forward !== '1') {
    out.push(fail('ip-forward', `net.ipv4.ip_forward is ${forward}: containers cannot reach outside their network and published ports do not work`, inScope(scope, 'sysctl -w net.ipv4.ip_forward=1')));
  } else {
    out.push(pass('ip-forward', 'net.ipv4.ip_forward = 1'));
  }
  return out;
}
