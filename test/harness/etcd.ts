// Real etcd clusters for tests and benchmarks: N members of Debian's etcd 3.4 on free
// loopback ports (or, with `netnsPath`, on fixed ports of a given address inside a test
// namespace), data in a temp dir (tmpfs when available), short election timeouts.
// Cleanup ends only the PIDs it started and removes only the directory it made.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTlsFiles, type TlsFiles } from './etcd-tls.js';

export interface EtcdClusterOptions {
  /** Number of members (default 3). */
  members?: number;
  /** Parent directory for data dirs and logs (default: a new temp dir, on /dev/shm when present). */
  dir?: string;
  /** Serve the v2 API too (dockerd --cluster-store needs it). */
  enableV2?: boolean;
  /** Raft heartbeat / election timeout in ms (default 50 / 500). */
  heartbeatMs?: number;
  electionMs?: number;
  /** Give up starting after this many ms (default 20000). */
  startTimeoutMs?: number;
  /** etcd binary (default /usr/bin/etcd). */
  binary?: string;
  /** Serve clients over TLS with client-certificate auth (throw-away CA made with openssl). */
  tls?: boolean;
  /**
   * Run every member inside this network namespace (`nsenter --net=PATH`, e.g. a store
   * "host" on a test underlay). Members then listen on `host` with fixed ports (client
   * `basePort + 2i`, peer `basePort + 2i + 1`), and this process, which cannot reach that
   * namespace, probes them with curl run inside it.
   */
  netnsPath?: string;
  /** Address the members listen on (default 127.0.0.1; with `netnsPath`, an address of that namespace). */
  host?: string;
  /** First port with `netnsPath` (default 2379). */
  basePort?: number;
}

export interface EtcdMember {
  readonly name: string;
  /** PID of the running process, or undefined while stopped. */
  readonly pid: number | undefined;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly running: boolean;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Start again with the same data dir (rejoins the cluster); resolves when it answers /health. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  /** Client URLs (http://HOST:port; HOST is 127.0.0.1 unless `host` was given). */
  readonly endpoints: string[];
  /** Store URL for openStore: etcd://127.0.0.1:p1,127.0.0.1:p2,… (etcds://…?ca=&cert=&key= with tls). */
  readonly url: string;
  /** The certificate files, when started with tls. */
  readonly tls?: TlsFiles;
  readonly members: EtcdMember[];
  readonly dir: string;
  /** The current leader (asks the running members). */
  leader(): Promise<EtcdMember>;
  /** Kill every member and remove the directory (idempotent). */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET (or POST body) url and parse JSON; https uses the cluster's CA and client cert. */
function getJson(url: string, tls: TlsFiles | undefined, body?: unknown, timeoutMs = 1000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const https = url.startsWith('https:');
    const opts = {
      method: body === undefined ? 'GET' : 'POST',
      timeout: timeoutMs,
      ...(https && tls ? { servername: '', ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(url, opts, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (d: string) => (data += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(data));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** GET (or POST) a member URL and parse JSON: directly, or from inside a namespace. */
type Fetch = (url: string, body?: unknown) => Promise<unknown>;

/** A Fetch running `curl` inside the namespace at netnsPath (this process is not in it). */
function curlIn(netnsPath: string, tls: TlsFiles | undefined): Fetch {
  return (url, body) =>
    new Promise((resolve, reject) => {
      const args = [`--net=${netnsPath}`, '--', 'curl', '-sS', '--max-time', '1'];
      if (tls) args.push('--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile);
      if (body !== undefined) args.push('-X', 'POST', '--data-binary', JSON.stringify(body));
      args.push(url);
      execFile('nsenter', args, { timeout: 3000 }, (err, stdout) => {
        if (err) return reject(err);
        try {
          resolve(JSON.parse(stdout));
        } catch (e) {
          reject(e);
        }
      });
    });
}

/** True when the member at clientUrl reports healthy (it has a leader). */
export async function healthy(clientUrl: string, tls?: TlsFiles, ask: Fetch = (u, b) => getJson(u, tls, b)): Promise<boolean> {
  try {
    const h = (await ask(`${clientUrl}/health`)) as { health?: string };
    return h.health === 'true';
  } catch {
    return false;
  }
}

class Member implements EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    private readonly args: string[],
    private readonly binary: string,
    private readonly logFile: string,
    private readonly startTimeoutMs: number,
    private readonly ask: Fetch,
    private readonly netnsPath?: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Spawn without waiting for health (members of a new cluster wait for each other). */
  spawn(): void {
    if (this.child) return;
    const fd = openSync(this.logFile, 'a');
    // nsenter execs etcd after entering the namespace: the child's PID is etcd's.
    const child = this.netnsPath
      ? spawn('nsenter', [`--net=${this.netnsPath}`, '--', this.binary, ...this.args], { stdio: ['ignore', fd, fd] })
      : spawn(this.binary, this.args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
  }

  async waitHealthy(): Promise<void> {
    const end = Date.now() + this.startTimeoutMs;
    while (Date.now() < end) {
      if (!this.child) throw new Error(`etcd member ${this.name} exited during start; see ${this.logFile}`);
      if (await healthy(this.clientUrl, undefined, this.ask)) return;
      await sleep(50);
    }
    throw new Error(`etcd member ${this.name} not healthy within ${this.startTimeoutMs} ms; see ${this.logFile}`);
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitHealthy();
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** Synchronous last-resort kill (process exit hook). */
  killNow(): void {
    this.child?.kill('SIGKILL');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

function defaultDir(): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return mkdtempSync(join(base, 'tsot-etcd-'));
}

/** Start an N-member etcd cluster on free loopback ports; resolves when every member is healthy. */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 3;
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? defaultDir();
  mkdirSync(dir, { recursive: true });
  let tls: TlsFiles | undefined;
  if (opts.tls) {
    mkdirSync(join(dir, 'tls'), { recursive: true });
    tls = await makeTlsFiles(join(dir, 'tls'));
  }
  const host = opts.host ?? '127.0.0.1';
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) throw new Error(`etcd host ${host} must be an IPv4 address`);
  const base = opts.basePort ?? 2379;
  // A fresh namespace has every port free; freePort() could only probe this process's own.
  const ports = opts.netnsPath
    ? Array.from({ length: n * 2 }, (_, i) => base + i)
    : await Promise.all(Array.from({ length: n * 2 }, () => freePort()));
  const ask: Fetch = opts.netnsPath ? curlIn(opts.netnsPath, tls) : (u, b) => getJson(u, tls, b);
  const names = Array.from({ length: n }, (_, i) => `m${i}`);
  const peer = (i: number) => `http://${host}:${ports[2 * i + 1]}`;
  const client = (i: number) => `${tls ? 'https' : 'http'}://${host}:${ports[2 * i]}`;
  const tlsArgs = tls
    ? [`--cert-file=${tls.serverCertFile}`, `--key-file=${tls.serverKeyFile}`, `--trusted-ca-file=${tls.caFile}`, '--client-cert-auth=true']
    : [];
  const initialCluster = names.map((nm, i) => `${nm}=${peer(i)}`).join(',');
  const token = `tsot-${process.pid}-${Date.now()}`;
  const members = names.map((name, i) => {
    const args = [
      `--name=${name}`,
      `--data-dir=${join(dir, name)}`,
      `--listen-client-urls=${client(i)}`,
      `--advertise-client-urls=${client(i)}`,
      `--listen-peer-urls=${peer(i)}`,
      `--initial-advertise-peer-urls=${peer(i)}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${token}`,
      `--heartbeat-interval=${opts.heartbeatMs ?? 50}`,
      `--election-timeout=${opts.electionMs ?? 500}`,
      `--enable-v2=${opts.enableV2 ? 'true' : 'false'}`,
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
      ...tlsArgs,
    ];
    return new Member(name, client(i), peer(i), args, opts.binary ?? '/usr/bin/etcd', join(dir, `${name}.log`), opts.startTimeoutMs ?? 20_000, ask, opts.netnsPath);
  });
  // If the test process dies abruptly, do not leave our etcd members behind.
  const onExit = () => members.forEach((m) => m.killNow());
  process.once('exit', onExit);
  let stopped = false;
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    url: storeUrl(members, tls),
    tls,
    members,
    dir,
    leader: () => findLeader(members, ask),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await Promise.all(members.map((m) => m.kill()));
      process.removeListener('exit', onExit);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      else for (const m of members) rmSync(join(dir, m.name), { recursive: true, force: true });
    },
  };
  try {
    members.forEach((m) => m.spawn());
    await Promise.all(members.map((m) => m.waitHealthy()));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

function storeUrl(members: EtcdMember[], tls: TlsFiles | undefined): string {
  const hosts = members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',');
  if (!tls) return `etcd://${hosts}`;
  const q = new URLSearchParams({ ca: tls.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile });
  return `etcds://${hosts}?${q.toString()}`;
}

/** A one-member cluster, for quick tests. */
export function startEtcdSingle(opts: Omit<EtcdClusterOptions, 'members'> = {}): Promise<EtcdCluster> {
  return startEtcdCluster({ ...opts, members: 1 });
}

async function findLeader(members: EtcdMember[], ask: Fetch): Promise<EtcdMember> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    for (const m of members) {
      if (!m.running) continue;
      try {
        const st = (await ask(`${m.clientUrl}/v3/maintenance/status`, {})) as { header?: { member_id?: string }; leader?: string };
        if (!st.leader || st.leader === '0') continue;
        for (const cand of members) {
          if (!cand.running) continue;
          const cs = (await ask(`${cand.clientUrl}/v3/maintenance/status`, {})) as { header?: { member_id?: string } };
          if (cs.header?.member_id === st.leader) return cand;
        }
      } catch {
        // member unreachable right now: ask the next one
      }
    }
    await sleep(50);
  }
  throw new Error('no etcd leader within 10 s');
}
