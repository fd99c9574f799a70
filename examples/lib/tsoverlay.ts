// The product as the examples use it: the `tsoverlay` command line, the daemon, the CNI plugins
// called the way a runtime calls them (environment + config on stdin), and etcd. Everything runs
// from this checkout through tsx (no build needed) inside the scenario's namespaces.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run, tryRun, type Background, type Netns, type Scenario } from './scenario.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOADER = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/** argv running one of our bin/ entries (tsoverlay, tsbridge, …) through tsx. */
export function binArgv(entry: string, args: string[] = []): string[] {
  return [process.execPath, `--import=${LOADER}`, join(ROOT, 'bin', `${entry}.ts`), ...args];
}

/** `tsoverlay ARGS` (in a namespace when given) → stdout; throws with the one-line error. */
export async function tsoverlay(args: string[], ns?: Netns): Promise<string> {
  const [cmd, ...rest] = binArgv('tsoverlay', args);
  const argv = ns ? ['nsenter', `--net=${ns.path}`, '--', cmd!, ...rest] : [cmd!, ...rest];
  const r = await tryRun(argv[0]!, argv.slice(1), { cwd: ROOT, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`tsoverlay ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** The daemon of one "host". */
export interface Daemon {
  hostId: string;
  store: string;
  socket: string;
  pluginDir: string;
  proc: Background;
}

export interface DaemonOptions {
  hostId: string;
  /** Default: an SQLite file in the scenario's dir. */
  store?: string;
  pluginDir?: string;
  extraArgs?: string[];
}

/** Start `tsoverlay daemon` inside a host namespace with its own state dir and socket; resolves when ready. */
export async function startDaemon(s: Scenario, ns: Netns, opts: DaemonOptions): Promise<Daemon> {
  const base = join(s.dir, opts.hostId);
  const store = opts.store ?? `sqlite://${join(base, 'state', 'store.db')}`;
  const socket = join(base, 'run', 'tsoverlay.sock');
  const pluginDir = opts.pluginDir ?? join(base, 'plugins');
  const args = ['daemon', '--host-id', opts.hostId, '--state-dir', join(base, 'state'), '--store', store, '--plugin-dir', pluginDir, '--socket', socket, ...(opts.extraArgs ?? [])];
  const [cmd, ...rest] = binArgv('tsoverlay', args);
  const proc = s.background(ns, cmd!, rest, { logFile: join(s.dir, `daemon-${opts.hostId}.log`), cwd: ROOT });
  await proc.waitForLine((l) => l.includes('"msg":"daemon ready"'), 90_000);
  return { hostId: opts.hostId, store, socket, pluginDir, proc };
}

/** What a runtime passes with each CNI call. */
export interface Attachment {
  containerId: string;
  /** The container's namespace. */
  netns: Netns;
  ifname?: string;
  /** CNI_ARGS, e.g. `K8S_POD_NAME=web1` (the name DNS and services use). */
  podName?: string;
}

/** Call a CNI plugin (our executable) from a host namespace; ADD returns the parsed result. */
export async function cni(host: Netns, plugin: string, command: 'ADD' | 'DEL' | 'CHECK', conf: object, att: Attachment): Promise<any> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: att.containerId,
    CNI_NETNS: att.netns.path,
    CNI_IFNAME: att.ifname ?? 'eth0',
    CNI_PATH: '/usr/lib/cni',
    ...(att.podName ? { CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAME=${att.podName}` } : {}),
  };
  const [cmd, ...rest] = binArgv(plugin);
  const r = await tryRun('nsenter', [`--net=${host.path}`, '--', cmd!, ...rest], { env, input: JSON.stringify(conf), cwd: ROOT, timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`${plugin} ${command} for ${att.podName ?? att.containerId}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

/** The first address of an ADD result, without prefix length. */
export const resultIp = (result: any): string => String(result.ips[0].address).split('/')[0]!;

/** Start a one-member etcd inside a namespace, clients on `ip:2379`; resolves when healthy. */
export async function startEtcd(s: Scenario, ns: Netns, ip: string): Promise<string> {
  const url = `http://${ip}:2379`;
  s.background(ns, 'etcd', [
    '--name', 'tsox', '--data-dir', join(s.dir, 'etcd'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', 'tsox=http://127.0.0.1:2380', '--logger', 'zap', '--log-level', 'error',
  ], { logFile: join(s.dir, 'etcd.log') });
  for (let i = 0; i < 120; i++) {
    const r = await ns.tryExec('etcdctl', ['--endpoints', url, '--dial-timeout', '1s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 5_000 });
    if (r.code === 0) return url;
    await sleep(250);
  }
  throw new Error(`etcd on ${url} did not become healthy`);
}

/** `etcdctl ARGS` inside a namespace. */
export function etcdctl(ns: Netns, endpoint: string, args: string[]): Promise<string> {
  return ns.exec('etcdctl', ['--endpoints', endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
}

/** Start the tiny web server (examples/lib/http-echo.mjs) inside a namespace. */
export async function httpEcho(s: Scenario, ns: Netns, name: string, port = 80): Promise<Background> {
  // The scenario's prefix rides along in argv so a leftover process would be recognisable.
  const proc = s.background(ns, process.execPath, [join(ROOT, 'examples/lib/http-echo.mjs'), name, String(port), s.prefix]);
  await proc.waitForLine((l) => l.startsWith('listening'), 30_000);
  return proc;
}

/** `curl` inside a namespace: the body, or undefined when nothing answered within timeoutS. */
export async function curl(ns: Netns, url: string, timeoutS = 2): Promise<string | undefined> {
  const r = await ns.tryExec('curl', ['-sS', '-m', String(timeoutS), url], { timeoutMs: (timeoutS + 5) * 1000 });
  return r.code === 0 ? r.stdout : undefined;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll fn until it returns a defined value (bounded); undefined after timeoutMs. */
export async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, everyMs = 200): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined || Date.now() >= end) return v;
    await sleep(everyMs);
  }
}

export { run };
