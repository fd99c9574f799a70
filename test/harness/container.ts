// Running commands inside a container's network namespace, from the outside (by the
// container's pid, with the host's tools) or from the inside (`docker/podman exec`,
// with the container's busybox). Works for engines in private mount namespaces,
// because /proc/PID/ns/net is reachable from anywhere.
import { run, tryRun, type RunOptions, type RunResult } from './exec.js';
import { HarnessError } from './harness-error.js';

/** What both engine handles (`DockerEngine`, `PodmanHost`) offer for one container. */
export interface ContainerEngine {
  /** Pid of the container's init process. */
  containerPid(name: string): Promise<number>;
  /** `<engine> exec NAME ARGS` → stdout. */
  exec(name: string, args: string[], opts?: RunOptions): Promise<string>;
}

function netnsArgs(pid: number): string[] {
  if (!Number.isInteger(pid) || pid <= 0) throw new HarnessError('harness-bad-pid', 'bad-request', `bad pid ${pid}`);
  return [`--net=/proc/${pid}/ns/net`, '--'];
}

/** Run a host tool (ip, ping, curl, iptables-save…) in the network namespace of process `pid`. */
export function execInPidNetns(pid: number, cmd: string, args: string[], opts?: RunOptions): Promise<string> {
  return run('nsenter', [...netnsArgs(pid), cmd, ...args], opts);
}

/** As `execInPidNetns`, resolving with code/stdout/stderr instead of throwing. */
export function tryExecInPidNetns(pid: number, cmd: string, args: string[], opts?: RunOptions): Promise<RunResult> {
  return tryRun('nsenter', [...netnsArgs(pid), cmd, ...args], opts);
}

/** Run a host tool in the network namespace of container `name` of `engine`. */
export async function execInContainerNetns(
  engine: ContainerEngine,
  name: string,
  cmd: string,
  args: string[],
  opts?: RunOptions,
): Promise<string> {
  return execInPidNetns(await engine.containerPid(name), cmd, args, opts);
}

/** The container's addresses as `ip -j addr` reports them, e.g. `{ eth0: ['10.88.0.2/24'] }` (lo left out). */
export async function containerAddresses(engine: ContainerEngine, name: string): Promise<Record<string, string[]>> {
  const out = await execInContainerNetns(engine, name, 'ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(out) as Array<{ ifname: string; addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>;
  const result: Record<string, string[]> = {};
  for (const l of links) {
    if (l.ifname === 'lo') continue;
    result[l.ifname] = (l.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6').map((a) => `${a.local}/${a.prefixlen}`);
  }
  return result;
}

/** The container's first IPv4 address on `ifname` (default eth0), without prefix length. */
export async function containerIPv4(engine: ContainerEngine, name: string, ifname = 'eth0'): Promise<string> {
  const addrs = (await containerAddresses(engine, name))[ifname] ?? [];
  const v4 = addrs.find((a) => !a.includes(':'));
  if (!v4) throw new HarnessError('harness-no-address', 'not-found', `container ${name} has no IPv4 address on ${ifname}`);
  return v4.split('/')[0]!;
}

/** `ping -c N -W 2 ADDR` from inside the container (busybox ping); true when every probe is answered. */
export async function pingFromContainer(engine: ContainerEngine, name: string, addr: string, count = 1): Promise<boolean> {
  try {
    await engine.exec(name, ['ping', '-c', String(count), '-W', '2', addr], { timeoutMs: 5_000 + 2_000 * count });
    return true;
  } catch {
    return false;
  }
}
