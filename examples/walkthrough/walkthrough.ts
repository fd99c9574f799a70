// The README's walkthrough, run for real: a "host" network namespace (with an underlay and a
// default route), a real dockerd in a private mount/UTS namespace on it (its own /run, so the
// default socket paths are the walkthrough's), our daemon and every command of the walkthrough
// inside that sandbox. Each step keeps the command as a reader types it and the output it gave.
// Nothing touches the root namespace; cleanup() removes every namespace, process and file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startBackground, type BackgroundProcess } from '../../test/harness/background.js';
import { CLI } from '../../test/harness/daemon.js';
import { startDockerd, type DockerEngine } from '../../test/harness/docker.js';
import { waitFor } from '../../test/harness/engine-api.js';
import { tryRun, type RunResult } from '../../test/harness/exec.js';
import { NetnsSet, type Netns } from '../../test/harness/netns.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE = join(ROOT, 'examples', 'walkthrough', 'page.ts');
// nsenter --mount starts the command in the target's working directory: name tsx by its file.
const TSX = `--import=${pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href}`;

/** The figures the walkthrough uses (the README shows these). */
export const WALK = Object.freeze({
  hostname: 'host1',
  underlay: '192.0.2.10/24',
  router: '192.0.2.1',
  metrics: '127.0.0.1:9310',
  subnet: '10.20.0.0/24',
  network: 'web',
  container: 'web1',
  publish: '8080:80',
  metricsFilter: '^tsoverlay_(network_endpoints|networks|ipam_pool_(allocations|free_addresses))',
});

/** One step: what the reader types (shown) and what it answered. */
export interface Step {
  id: string;
  /** The command lines as the README shows them. */
  shown: string[];
  output: string;
  code: number;
}

export interface WalkthroughResult {
  steps: Step[];
  /** `doctor --json`, parsed (not shown in the README; the test reads it). */
  doctorJson: { checks: { name: string; ok: boolean; detail: string; fix: string | null }[] };
  /** What headless Chromium saw on the page. */
  page: { summary: string; status: string; hosts: string[]; endpoints: string[] };
  /** Real traffic through the host's FORWARD chain (not shown; the test checks doctor's verdict with it). */
  traffic: { containerToOutside: boolean; outsideToPublished: string | null };
}

/** The world the walkthrough runs in; `cleanup()` is idempotent and always safe. */
class Sandbox {
  readonly nets = new NetnsSet('wt');
  readonly dir = mkdtempSync(join(tmpdir(), 'tsot-walk-'));
  readonly stateDir = join(this.dir, 'state');
  host?: Netns;
  router?: Netns;
  engine?: DockerEngine;
  daemon?: BackgroundProcess;

  /** nsenter arguments into the engine's mount/UTS namespace and the host's network namespace. */
  enter(): string[] {
    return [`--target=${this.engine!.pid}`, '--mount', '--uts', `--net=${this.host!.path}`, '--'];
  }

  /** A command inside the sandbox, never throwing for its exit status. */
  run(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return tryRun('nsenter', [...this.enter(), cmd, ...args], { cwd: ROOT, timeoutMs });
  }

  /** `tsoverlay ARGS` from this checkout (through tsx), on the walkthrough's store. */
  tsoverlay(args: string[]): Promise<RunResult> {
    return this.run(process.execPath, [TSX, CLI, ...args, '--state-dir', this.stateDir]);
  }

  /** Make the host namespace (underlay 192.0.2.10/24, default route), start dockerd in it. */
  async start(): Promise<void> {
    this.host = await this.nets.add('host');
    const router = (this.router = await this.nets.add('gw'));
    await this.nets.link(this.host, 'eth0', WALK.underlay, router, 'eth0', `${WALK.router}/24`);
    await this.host.ip('route', 'add', 'default', 'via', WALK.router);
    // A second --host puts the API where the docker CLI looks by default (the sandbox's own /run).
    this.engine = await startDockerd({ netns: this.host.path, hostname: WALK.hostname, extraArgs: ['--host', 'unix:///var/run/docker.sock'] });
    await this.engine.importBusybox('busybox:latest');
  }

  /** Start the daemon with the walkthrough's flags (defaults for sockets and plugin dir); resolves when ready. */
  async startDaemon(flags: string[]): Promise<void> {
    const argv = [...this.enter(), process.execPath, TSX, CLI, 'daemon', ...flags, '--state-dir', this.stateDir];
    this.daemon = startBackground('nsenter', argv, { logFile: join(this.dir, 'daemon.log'), cwd: ROOT });
    const d = this.daemon;
    let exited = false;
    void d.exited.then(() => (exited = true));
    await waitFor(() => {
      if (exited) throw new Error(`the daemon exited:\n${d.log()}`);
      return /"msg":"daemon ready"/.test(d.log());
    }, 90_000, () => new Error(`the daemon did not start:\n${d.log()}`), 200);
  }

  async cleanup(): Promise<void> {
    await this.daemon?.stop(10_000).catch(() => undefined);
    await this.engine?.stop().catch(() => undefined);
    await this.nets.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Replace the sandbox's own paths in an output with the defaults a user has. */
function userPaths(box: Sandbox, text: string): string {
  return text.split(box.stateDir).join('/var/lib/tsoverlay');
}

/**
 * The daemon's start-up log up to "daemon ready", keeping the lines a reader should notice; each
 * run of lines left out (npm's own first) becomes one `…` line.
 */
function startupLines(log: string): string {
  const wanted = new Set(['store opened', 'metrics and topology page served', 'host registered', 'plugin listening', 'daemon ready']);
  const out: string[] = ['…'];
  for (const line of log.split('\n')) {
    let msg = '';
    try {
      msg = (JSON.parse(line) as { msg?: string }).msg ?? '';
    } catch {
      // not a log record
    }
    if (wanted.has(msg)) out.push(line);
    else if (line.trim() && out.at(-1) !== '…') out.push('…');
    if (msg === 'daemon ready') break;
  }
  return out.join('\n');
}

/** Poll until the daemon has learnt the container's name from the engine (bounded). */
async function waitForName(box: Sandbox, name: string): Promise<void> {
  await waitFor(
    async () => {
      const r = await box.tsoverlay(['endpoint', 'ls', '--json']);
      return r.code === 0 && (JSON.parse(r.stdout) as { names: string[] }[]).some((e) => e.names.includes(name));
    },
    30_000,
    () => new Error(`no endpoint named ${name} in the store`),
    300,
  );
}

/**
 * What doctor's "forward-policy: ok" promises, tried for real through dockerd's FORWARD DROP: the
 * container reaches the router outside the host, and the router reaches the published port.
 */
async function trafficChecks(box: Sandbox, port: string): Promise<WalkthroughResult['traffic']> {
  const out = await box.run('docker', ['exec', WALK.container, 'ping', '-c', '1', '-W', '2', WALK.router]);
  const addr = WALK.underlay.split('/')[0];
  const inbound = await box.router!.tryExec('curl', ['-sS', '-m', '5', `http://${addr}:${port}/etc/hostname`], { timeoutMs: 10_000 });
  return { containerToOutside: out.code === 0, outsideToPublished: inbound.code === 0 ? inbound.stdout.trim() : null };
}

export interface WalkthroughRun {
  /** The steps' results; the sandbox is gone by the time this settles. */
  done: Promise<WalkthroughResult>;
  /** Stop early (Ctrl-C, a test's teardown): removes everything made so far. Idempotent. */
  cleanup(): Promise<void>;
}

/** Start every step of the walkthrough; the screenshot goes to `screenshot`. Always cleans up. */
export function runWalkthrough(opts: { screenshot: string; log?: (line: string) => void; daemonFlags?: string[] }): WalkthroughRun {
  const box = new Sandbox();
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= box.cleanup());
  const done = allSteps(box, opts.screenshot, opts.log ?? (() => undefined), opts.daemonFlags ?? []).finally(cleanup);
  return { done, cleanup };
}

/** `hidden`: daemon flags the README does not show (e.g. `--firewall-backend nft` for a test). */
async function allSteps(box: Sandbox, screenshot: string, log: (line: string) => void, hidden: string[]): Promise<WalkthroughResult> {
  const steps: Step[] = [];
  const record = (id: string, shown: string[], r: RunResult, output = r.stdout + r.stderr) => {
    steps.push({ id, shown, output: userPaths(box, output).trimEnd(), code: r.code });
    log(`${id}: exit ${r.code}`);
  };
  log('making the host namespace and starting dockerd');
  await box.start();
  await box.startDaemon(['--metrics', WALK.metrics, ...hidden]);
  record('daemon', [`sudo npm start -- --metrics ${WALK.metrics}`], { code: 0, stdout: startupLines(box.daemon!.log()), stderr: '' });

  const create = ['network', 'create', '-d', 'tsbridge', '--ipam-driver', 'tsipam', '--subnet', WALK.subnet, WALK.network];
  record('network-create', [`docker ${create.join(' ')}`], await box.run('docker', create));
  const runArgs = ['run', '-d', '--net', WALK.network, '--name', WALK.container, '-p', WALK.publish, 'busybox', 'httpd', '-f', '-p', '80'];
  record('docker-run', [`docker ${runArgs.join(' ')}`], await box.run('docker', runArgs));
  await waitForName(box, WALK.container);
  const port = WALK.publish.split(':')[0]!;
  record('curl-port', [`curl -s 127.0.0.1:${port}/etc/hostname`], await box.run('curl', ['-sS', '-m', '10', `http://127.0.0.1:${port}/etc/hostname`]));

  record('network-ls', ['sudo tsoverlay network ls'], await box.tsoverlay(['network', 'ls']));
  record('endpoint-ls', ['sudo tsoverlay endpoint ls'], await box.tsoverlay(['endpoint', 'ls']));
  const metrics = await box.run('curl', ['-sS', '-m', '10', `http://${WALK.metrics}/metrics`]);
  const filter = new RegExp(WALK.metricsFilter);
  const picked = metrics.stdout.split('\n').filter((l) => filter.test(l)).join('\n');
  record('metrics', [`curl -s ${WALK.metrics}/metrics | grep -E '${WALK.metricsFilter}'`], { ...metrics, stdout: picked });

  log('opening the page in headless Chromium');
  const shot = await tryRun('nsenter', [`--net=${box.host!.path}`, '--', process.execPath, TSX, PAGE, `http://${WALK.metrics}/`, screenshot, WALK.container], { cwd: ROOT, timeoutMs: 60_000 });
  if (shot.code !== 0) throw new Error(`the page could not be shown: ${shot.stderr}`);
  const page = JSON.parse(shot.stdout) as WalkthroughResult['page'];
  log(`page: ${page.summary}`);

  record('doctor', ['sudo tsoverlay doctor'], await box.tsoverlay(['doctor']));
  const doc = await box.tsoverlay(['doctor', '--json']);
  const traffic = await trafficChecks(box, port);
  return { steps, doctorJson: JSON.parse(doc.stdout) as WalkthroughResult['doctorJson'], page, traffic };
}
