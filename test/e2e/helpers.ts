// Observing the e2e world the way a user would: pings and lookups from inside containers,
// a DNS timing probe in a container's namespace, and a live watch of the store's endpoint
// records (etcdctl in the store namespace) stamped with the time each event arrived here.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tryExecInPidNetns, type ContainerEngine } from '../harness/container.js';
import type { RunResult } from '../harness/exec.js';
import type { E2eWorld } from './world.js';

const PROBE = fileURLToPath(new URL('./dns-probe.mjs', import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `pred` every `stepMs` until true or `ms` passed; resolves whether it became true. */
export async function until(pred: () => Promise<boolean> | boolean, ms: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

/** A container and the engine handle that runs it (DockerEngine or PodmanHost). */
export interface Ctr {
  name: string;
  engine: ContainerEngine;
  /** Its overlay address. */
  ip: string;
  pid: number;
}

/** `<engine> exec NAME ARGS` with the container's own busybox, as a RunResult. */
export async function execIn(c: Pick<Ctr, 'name' | 'engine'>, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  try {
    return { code: 0, stdout: await c.engine.exec(c.name, args, { timeoutMs }), stderr: '' };
  } catch (err) {
    return { code: 1, stdout: '', stderr: (err as Error).message };
  }
}

/** busybox `ping -c 1 -W 2 TARGET` inside the container (names resolve through its resolv.conf). */
export async function pings(c: Pick<Ctr, 'name' | 'engine'>, target: string): Promise<RunResult> {
  return execIn(c, ['ping', '-c', '1', '-W', '2', target]);
}

/** The host's iputils ping in the container's namespace: DF set (-M do), payload `size` bytes. */
export function dfPing(c: Pick<Ctr, 'pid'>, target: string, size: number): Promise<RunResult> {
  return tryExecInPidNetns(c.pid, 'ping', ['-n', '-c', '1', '-W', '2', '-M', 'do', '-s', String(size), target], { timeoutMs: 10_000 });
}

export interface ProbeResult {
  /** Wall-clock ms when the matching reply arrived. */
  t?: number;
  rcode?: number;
  addrs?: string[];
  timeout?: boolean;
}

export interface DnsProbe {
  /** Resolves once the probe's socket is bound (queries are flowing). */
  ready: Promise<void>;
  /** The first matching reply, or `{timeout: true}`. */
  result: Promise<ProbeResult>;
  stop(): void;
}

/**
 * Start dns-probe.mjs in the network namespace of `pid`: asks `server:53` for `name` every
 * `intervalMs` until a reply says it is `mode` ('present' | 'absent').
 */
export function startDnsProbe(pid: number, server: string, name: string, mode: 'present' | 'absent', timeoutMs: number, opts: { intervalMs?: number; expect?: string } = {}): DnsProbe {
  const args = [`--net=/proc/${pid}/ns/net`, '--', process.execPath, PROBE, server, '53', name, mode, String(timeoutMs), String(opts.intervalMs ?? 5), opts.expect ?? ''];
  const child: ChildProcess = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  let onReady: () => void = () => {};
  let onFail: (e: Error) => void = () => {};
  const ready = new Promise<void>((res, rej) => ((onReady = res), (onFail = rej)));
  const result = new Promise<ProbeResult>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const lines = (buf + d).split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') onReady();
        else if (line.startsWith('{')) resolve(JSON.parse(line) as ProbeResult);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => {
      const err = new Error(`dns probe exited ${code}: ${stderr}`);
      onFail(err);
      reject(err);
    });
  });
  result.catch(() => undefined);
  ready.catch(() => undefined);
  return {
    ready,
    result,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

export interface StoreEvent {
  /** Wall-clock ms when this process read the event. */
  t: number;
  type: 'put' | 'delete';
  key: string;
  value?: Record<string, unknown>;
}

/** `etcdctl watch --prefix` in the store namespace; every event kept with its arrival time. */
export class StoreWatch {
  readonly events: StoreEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private buf = '';

  /** Kills the watcher if this process exits without stop() (it would retry forever). */
  private readonly onExit = () => this.stop();

  private constructor(private readonly child: ChildProcess) {
    process.once('exit', this.onExit);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const t = Date.now();
      const lines = (this.buf + d).split('\n');
      this.buf = lines.pop() ?? '';
      for (const line of lines) this.take(t, line);
    });
  }

  static start(w: E2eWorld, prefix: string): StoreWatch {
    const child = spawn('nsenter', [`--net=${w.storeNs.path}`, '--', 'etcdctl', `--endpoints=${w.etcd.endpoints.join(',')}`, 'watch', '--prefix', prefix, '-w', 'json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return new StoreWatch(child);
  }

  /** The first event (already seen or future) that `pred` accepts, within `ms`. */
  async waitFor(pred: (e: StoreEvent) => boolean, ms: number): Promise<StoreEvent | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit || Date.now() > end) return hit;
      await new Promise<void>((res) => {
        const timer = setTimeout(res, Math.max(1, end - Date.now()));
        this.waiters.add(() => (clearTimeout(timer), res()));
      });
    }
  }

  stop(): void {
    process.removeListener('exit', this.onExit);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private take(t: number, line: string): void {
    let msg: { Events?: Array<{ type?: number; kv: { key: string; value?: string } }> };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    for (const e of msg.Events ?? []) {
      const key = Buffer.from(e.kv.key, 'base64').toString();
      const value = e.kv.value ? (JSON.parse(Buffer.from(e.kv.value, 'base64').toString()) as Record<string, unknown>) : undefined;
      this.events.push({ t, type: e.type === 1 ? 'delete' : 'put', key, ...(value ? { value } : {}) });
    }
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      w();
    }
  }
}

/** True when a put event's endpoint record carries `name` among its names. */
export function namesInclude(e: StoreEvent, name: string): boolean {
  const names = e.value?.names;
  return e.type === 'put' && Array.isArray(names) && names.includes(name);
}
