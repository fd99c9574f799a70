// Kernel checks of `tsoverlay doctor`: bridge, veth and VXLAN links are tried for real inside a
// throw-away namespace (never the root one) that has no name and is held by a child process
// reading our pipe, so it vanishes with the doctor even when the doctor is killed; br_netfilter and
// IP forwarding are read as sysctls of the inspected namespace. Reads only, outside the probe
// (and the removal of named probe namespaces an older doctor left behind).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
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
 * Named probe namespaces (`tsodoc-<pid36>-<hex>`, made by doctors before the probe had no name) of
 * doctors that no longer run: deleted. Returns the names removed.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p)) ?? 'unshare';

/**
 * A new network namespace held by `unshare --net -- cat`: reachable as /proc/PID/ns/net while cat
 * reads our pipe; when the pipe closes (release(), or this process dies) cat exits and the
 * namespace with every probe link goes away. Rejects with unshare's complaint (e.g. not root).
 */
export async function probeNamespace(timeoutMs: number): Promise<{ path: string; release(): void }> {
  const child = spawn(UNSHARE, ['--net', '--', 'cat'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  let failed: Error | undefined;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.once('error', (err) => (failed = err));
  child.stdin!.on('error', () => undefined);
  const release = () => {
    child.stdin!.end();
    child.kill('SIGKILL');
  };
  const own = readlinkSync('/proc/self/ns/net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (failed || child.exitCode !== null) throw new Error(firstLine(stderr) || failed?.message || `unshare exited ${child.exitCode}`);
    try {
      const pid = child.pid!;
      // Before unshare(2) the child still shares our namespace; after the exec its comm is "cat".
      if (readlinkSync(`/proc/${pid}/ns/net`) !== own && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'cat') return { path: `/proc/${pid}/ns/net`, release };
    } catch {
      // not started yet, or gone (the next round sees the exit)
    }
    if (Date.now() > deadline) {
      release();
      throw new Error(`no probe namespace within ${timeoutMs} ms`);
    }
    await sleep(5);
  }
}

/** Create each kind of link the drivers need inside a throw-away namespace. */
export async function kernelLinkChecks(kernel: Kernel, scope: Scope): Promise<Check[]> {
  await sweepStaleProbes(new NetnsTools(undefined, scope.timeoutMs));
  let probe: { path: string; release(): void };
  try {
    probe = await probeNamespace(scope.timeoutMs);
  } catch (err) {
    const why = `cannot make a probe namespace: ${firstLine((err as Error).message)}`;
    return PROBES.map((p) => fail(p.name, why, 'run `tsoverlay doctor` as root (it needs CAP_SYS_ADMIN and CAP_NET_ADMIN)'));
  }
  try {
    const ns = kernel.ns(probe.path);
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
    // The namespace, and every probe link in it, ends with its holder.
    probe.release();
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
