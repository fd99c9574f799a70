// A private mount + UTS namespace for one container engine. A holder process keeps
// it alive; machine-wide paths the engine would share (/run, /etc/docker, /var/lib/cni)
// are private mounts inside it, so parallel engines never meet and their mounts go
// away with the namespace. destroy() ends every process in it, by pid, while a pin on
// the namespace keeps its number from naming anyone else's.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tryRun, type RunOptions, type RunResult } from './exec.js';
import { HarnessError } from './harness-error.js';
import { isAlive, killNamespace, killNamespaceSync, mountNsOf, NamespacePin, readProc, removeCgroupTree, removeCgroupTreeUntilGoneSync } from './proc.js';

/** A mount made inside the sandbox, in order. Bind targets are created if missing. */
export type SandboxMount = { type: 'tmpfs'; target: string } | { type: 'bind'; source: string; target: string };

export interface SandboxOptions {
  /** The engine's own directory; `owner.json` in it lets a later run sweep leftovers. */
  dir: string;
  /** Hostname inside the private UTS namespace. */
  hostname: string;
  /** A cgroup name (`tsot-…`) the engine puts its containers under; removed on destroy. */
  cgroup: string;
  mounts: SandboxMount[];
}

/** What a sandbox leaves in its directory so that a later process can clean up after a crash. */
interface OwnerRecord {
  ownerPid: number;
  ownerStart: string;
  holderPid: number;
  holderStart: string;
  mntNs: string;
  cgroup: string;
}

const HOSTNAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class EngineSandbox {
  private constructor(
    readonly holderPid: number,
    private readonly holderStart: string,
    private readonly pin: NamespacePin,
    readonly dir: string,
    readonly cgroup: string,
  ) {}

  /** The private mount namespace ("mnt:[…]"); pinned until destroy() ends. */
  get mntNs(): string {
    return this.pin.mntNs;
  }

  /** Start the holder, make the mounts, set the hostname. On failure nothing is left running. */
  static async create(opts: SandboxOptions): Promise<EngineSandbox> {
    if (!HOSTNAME.test(opts.hostname)) {
      throw new HarnessError('harness-bad-hostname', 'bad-request', `hostname ${JSON.stringify(opts.hostname)} must match ${HOSTNAME}`);
    }
    const holder = spawn('unshare', ['--mount', '--uts', '--propagation', 'slave', '--', 'sleep', 'infinity'], {
      stdio: 'ignore',
      detached: true,
    });
    holder.unref();
    const pid = holder.pid;
    if (pid === undefined) throw new HarnessError('harness-holder-spawn', 'internal', 'unshare did not start');
    const mine = mountNsOf(process.pid);
    let box: EngineSandbox | undefined;
    try {
      const mntNs = await waitForOwnNamespace(pid, mine);
      const start = readProc(pid)?.startTime ?? '';
      const pin = NamespacePin.of(pid, mntNs, start);
      if (!pin) throw new HarnessError('harness-holder-start', 'unavailable', `unshare holder ${pid} ended before its namespace was pinned`);
      box = new EngineSandbox(pid, start, pin, opts.dir, opts.cgroup);
      box.writeOwner();
      for (const m of opts.mounts) await box.mount(m);
      await box.exec('hostname', [opts.hostname]);
      return box;
    } catch (err) {
      if (box) await box.destroy().catch(() => undefined);
      else signalQuietly(pid);
      throw err;
    }
  }

  /** nsenter arguments that put a command in this sandbox and the network namespace at `netnsPath`. */
  enterArgs(netnsPath?: string): string[] {
    const args = [`--target=${this.holderPid}`, '--mount', '--uts'];
    if (netnsPath) args.push(`--net=${netnsPath}`);
    return [...args, '--'];
  }

  /** Run a command inside the sandbox (and netns, when given); throws on non-zero exit. */
  exec(cmd: string, args: string[], opts: RunOptions & { netns?: string } = {}): Promise<string> {
    return run('nsenter', [...this.enterArgs(opts.netns), cmd, ...args], opts);
  }

  tryExec(cmd: string, args: string[], opts: RunOptions & { netns?: string } = {}): Promise<RunResult> {
    return tryRun('nsenter', [...this.enterArgs(opts.netns), cmd, ...args], opts);
  }

  /** Processes are killed, the cgroup tree and the directory removed. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.pin.held) {
      try {
        await killNamespace(this.pin);
      } finally {
        this.pin.release();
      }
    }
    this.signalHolder();
    await removeCgroupTree(this.cgroup);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Best-effort synchronous destroy for `process.on('exit')`. */
  destroySync(): void {
    if (this.pin.held) {
      killNamespaceSync(this.pin);
      this.pin.release();
    }
    this.signalHolder();
    removeCgroupTreeUntilGoneSync(this.cgroup);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGKILL the holder if it is still the process we started (its pid may be reused once it is gone). */
  private signalHolder(): void {
    if (isAlive(this.holderPid, this.holderStart)) signalQuietly(this.holderPid);
  }

  private async mount(m: SandboxMount): Promise<void> {
    if (!m.target.startsWith('/') || m.target.includes('..')) {
      throw new HarnessError('harness-bad-mount', 'bad-request', `mount target ${m.target} must be absolute`);
    }
    await this.exec('mkdir', ['-p', m.target]);
    // -n: do not write /run/mount/utab, which would land in the machine's /run.
    if (m.type === 'tmpfs') await this.exec('mount', ['-n', '-t', 'tmpfs', '-o', 'mode=0755,size=64m', 'tsot', m.target]);
    else await this.exec('mount', ['-n', '--bind', m.source, m.target]);
  }

  private writeOwner(): void {
    const rec: OwnerRecord = {
      ownerPid: process.pid,
      ownerStart: readProc(process.pid)?.startTime ?? '',
      holderPid: this.holderPid,
      holderStart: this.holderStart,
      mntNs: this.mntNs,
      cgroup: this.cgroup,
    };
    writeFileSync(join(this.dir, 'owner.json'), JSON.stringify(rec));
  }
}

async function waitForOwnNamespace(pid: number, mine: string | undefined): Promise<string> {
  // Generous: on a loaded 2-core machine starting `unshare … sleep` took more than 5 s.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ns = mountNsOf(pid);
    // Before unshare(2) runs, the child still shares our namespace; after exec the comm is "sleep".
    if (ns && ns !== mine && readProc(pid)?.state !== 'Z' && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') return ns;
    if (!isAlive(pid) || Date.now() > deadline) {
      throw new HarnessError('harness-holder-start', 'unavailable', `unshare holder ${pid} did not enter a new mount namespace`);
    }
    await sleep(10);
  }
}

function signalQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Clean up after processes that died without cleaning up (a killed test worker):
 * every `/tmp/tsot-*` directory whose `owner.json` names a process that no longer
 * runs gets its engine's processes killed (only if its holder is still the one
 * recorded), its cgroup removed and the directory deleted. Returns what it removed.
 */
export async function sweepStaleEngines(root = '/tmp'): Promise<string[]> {
  const swept: string[] = [];
  for (const name of readdirSync(root)) {
    if (!name.startsWith('tsot-')) continue;
    const dir = join(root, name);
    const file = join(dir, 'owner.json');
    if (!existsSync(file)) continue;
    let rec: Partial<OwnerRecord>;
    try {
      rec = JSON.parse(readFileSync(file, 'utf8')) as Partial<OwnerRecord>;
    } catch {
      continue; // being written right now
    }
    if (typeof rec.ownerPid !== 'number' || isAlive(rec.ownerPid, rec.ownerStart)) continue;
    // Pinned first: the recorded number may already name another engine's or container's namespace.
    const pin = typeof rec.holderPid === 'number' && rec.mntNs ? NamespacePin.of(rec.holderPid, rec.mntNs, rec.holderStart) : undefined;
    if (pin) {
      await killNamespace(pin).catch(() => undefined);
      pin.release();
    }
    if (rec.cgroup) await removeCgroupTree(rec.cgroup).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    swept.push(dir);
  }
  return swept;
}

/** Write `owner.json` for a directory that has no sandbox (e.g. a cached rootfs), so it is swept too. */
export function markOwned(dir: string): void {
  const rec: Partial<OwnerRecord> = { ownerPid: process.pid, ownerStart: readProc(process.pid)?.startTime ?? '' };
  writeFileSync(join(dir, 'owner.json'), JSON.stringify(rec));
}
