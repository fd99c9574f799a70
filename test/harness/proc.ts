// Process and cgroup bookkeeping for engines the harness starts: find every process
// of one private mount namespace (plus descendants), kill them by pid, remove a
// cgroup tree. Reads Linux /proc and /sys/fs/cgroup directly; synchronous variants
// exist for `process.on('exit')`, where nothing asynchronous runs.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './harness-error.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** One-letter state from /proc/PID/stat ('Z' = zombie). */
  state: string;
  /** Start time in clock ticks since boot: with the pid, identifies one process. */
  startTime: string;
}

/** /proc/PID/stat of one process, or undefined when it is gone. */
export function readProc(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), startTime: rest[19] ?? '' };
}

/** The mount namespace link of a process ("mnt:[4026532396]"), or undefined. */
export function mountNsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** True when pid runs (a zombie counts as gone). With startTime, also guards against pid reuse. */
export function isAlive(pid: number, startTime?: string): boolean {
  const p = readProc(pid);
  if (!p || p.state === 'Z') return false;
  return startTime === undefined || p.startTime === startTime;
}

function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/**
 * Live pids whose mount namespace is `mntNs`, plus all their descendants.
 * Containers run in namespaces of their own but stay children of the shim or
 * conmon, which live in the engine's namespace: the descendant walk finds them.
 */
export function namespaceMembers(mntNs: string): number[] {
  const procs = allProcs().filter((p) => p.state !== 'Z');
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const found = new Set<number>();
  const queue = procs.filter((p) => mountNsOf(p.pid) === mntNs).map((p) => p.pid);
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (found.has(pid) || pid === process.pid) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

/** Send a signal to each pid; a pid that is already gone is not an error. */
export function signalPids(pids: number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // ESRCH: already gone.
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An open handle on a mount namespace. A namespace's inode number ("mnt:[…]") is handed to the
 * next namespace the kernel makes as soon as the last process and handle let go of it, and
 * containers make namespaces all the time: killing "the members of mnt:[N]" by number after the
 * engine's namespace died killed other tests' container inits. While a pin is held the number
 * stays this namespace's, so killing by it is safe.
 */
export class NamespacePin {
  private constructor(
    readonly mntNs: string,
    private fd: number | undefined,
  ) {}

  /**
   * Pin the mount namespace of `pid`, if that process still runs (and is the one started at
   * `startTime`, when given) and its namespace is `expected` (when given); else undefined.
   */
  static of(pid: number, expected?: string, startTime?: string): NamespacePin | undefined {
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/ns/mnt`, 'r');
    } catch {
      return undefined;
    }
    const name = `mnt:[${fstatSync(fd).ino}]`;
    // Checked after the open: a pid reused in between has another start time.
    if ((expected !== undefined && name !== expected) || !isAlive(pid, startTime)) {
      closeSync(fd);
      return undefined;
    }
    return new NamespacePin(name, fd);
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /** Let go of the namespace; its number may name another namespace from now on. Idempotent. */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

function pinnedName(pin: NamespacePin): string {
  if (!pin.held) throw new HarnessError('harness-ns-released', 'internal', `${pin.mntNs} is no longer pinned: its number may name another namespace`);
  return pin.mntNs;
}

/** SIGKILL every member of the pinned mount namespace until none is left (bounded). */
export async function killNamespace(pin: NamespacePin, timeoutMs = 10_000): Promise<void> {
  const mntNs = pinnedName(pin);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = namespaceMembers(mntNs);
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      throw new HarnessError('harness-kill-timeout', 'internal', `pids ${pids.join(',')} of ${mntNs} survive SIGKILL`);
    }
    signalPids(pids);
    await sleep(50);
  }
}

/** Block the thread for `ms` (exit hooks cannot await). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Synchronous `killNamespace` for exit hooks: SIGKILL until none is left, bounded. True when none is. */
export function killNamespaceSync(pin: NamespacePin, timeoutMs = 5_000): boolean {
  const mntNs = pinnedName(pin);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = namespaceMembers(mntNs);
    if (pids.length === 0) return true;
    if (Date.now() > deadline) return false;
    signalPids(pids);
    sleepSync(20);
  }
}

const CGROUP_NAME = /^tsot-[a-z0-9-]{1,40}$/;

/** `/sys/fs/cgroup/<hierarchy>/<name>` for every mounted cgroup (v1 or v2) hierarchy holding it. */
export function cgroupDirs(name: string): string[] {
  if (!CGROUP_NAME.test(name)) {
    throw new HarnessError('harness-bad-cgroup', 'bad-request', `cgroup name ${JSON.stringify(name)} must match ${CGROUP_NAME}`);
  }
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const fstype = post?.split(' ')[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const dir = join(pre!.split(' ')[4]!, name);
    if (existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return out;
  }
  for (const e of entries) out.push(...subdirsDeepestFirst(join(dir, e)));
  out.push(dir);
  return out;
}

/** One pass: kill what runs in the tree, rmdir what is empty. True when all is gone. */
export function removeCgroupTreeSync(name: string): boolean {
  let clean = true;
  for (const top of cgroupDirs(name)) {
    for (const dir of subdirsDeepestFirst(top)) {
      try {
        const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
        signalPids(pids);
        rmdirSync(dir);
      } catch {
        clean = false;
      }
    }
  }
  return clean;
}

/** Synchronous `removeCgroupTree` for exit hooks (bounded). True when the tree is gone. */
export function removeCgroupTreeUntilGoneSync(name: string, timeoutMs = 3_000): boolean {
  const deadline = Date.now() + timeoutMs;
  while (!removeCgroupTreeSync(name)) {
    if (Date.now() > deadline) return false;
    sleepSync(20);
  }
  return true;
}

/** Kill every process in the cgroup tree `name` and remove it from every hierarchy (bounded). */
export async function removeCgroupTree(name: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!removeCgroupTreeSync(name)) {
    if (Date.now() > deadline) {
      throw new HarnessError('harness-cgroup-busy', 'internal', `cgroup ${name} still busy: ${cgroupDirs(name).join(', ')}`, true);
    }
    await sleep(50);
  }
}

/** Mount points (as the calling process sees them) at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const target = line.split(' ')[4];
    if (target && (target === dir || target.startsWith(`${dir}/`))) out.push(target);
  }
  return out;
}

/**
 * Run `cleanup` (synchronous) when this process ends without the test calling stop():
 * on normal exit, and on SIGTERM, which AVA sends to a worker on its global timeout and
 * whose default action would skip 'exit' handlers. Returns the function that unregisters.
 */
export function onProcessEnd(cleanup: () => void): () => void {
  const onTerm = () => process.exit(143);
  process.once('exit', cleanup);
  process.once('SIGTERM', onTerm);
  return () => {
    process.removeListener('exit', cleanup);
    process.removeListener('SIGTERM', onTerm);
  };
}
