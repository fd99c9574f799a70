// Several standalone DNS processes sharing the same sockets (node:cluster): one Node process
// answers roughly 100-145k cached UDP queries/s on this hardware (bench/dns.ts), so a busy
// cluster DNS uses one worker per core. Each worker holds its own index (its own store
// connection and watch).
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { DnsError } from './errors.js';
import type { ListenAddress } from './server.js';
import type { StandaloneHandle, StandaloneOptions } from './standalone.js';

/** Environment variable carrying a worker's options (JSON, without `log`). */
export const WORKER_ENV = 'TSOVERLAY_DNS_WORKER';

/** Messages between the primary and its workers. */
export type WorkerMessage = { type: 'ready'; addresses: ListenAddress[] } | { type: 'failed'; code: string; message: string } | { type: 'stop' };

function workerEntry(): string {
  // Under tsx the sources are .ts; built, they are .js next to this file.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./standalone-worker${ext}`, import.meta.url));
}

function fork(opts: StandaloneOptions): Promise<{ worker: Worker; addresses: ListenAddress[] }> {
  const { log: _log, workers: _n, ...plain } = opts;
  const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(plain) });
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new DnsError('listen-failed', `DNS worker exited with ${code} before serving`));
    worker.once('exit', onExit);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        worker.removeListener('exit', onExit);
        resolve({ worker, addresses: m.addresses });
      } else if (m.type === 'failed') {
        worker.removeListener('exit', onExit);
        worker.kill();
        reject(new DnsError(m.code === 'store-failed' ? 'store-failed' : 'listen-failed', m.message));
      }
    });
  });
}

function stopWorker(w: Worker, graceMs = 5000): Promise<void> {
  if (w.isDead()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => w.kill('SIGKILL'), graceMs);
    w.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    w.send({ type: 'stop' } satisfies WorkerMessage);
  });
}

/** Start `opts.workers` worker processes; a worker that dies is replaced. */
export async function serveClustered(opts: StandaloneOptions): Promise<StandaloneHandle> {
  cluster.setupPrimary({ exec: workerEntry(), args: [], execArgv: process.execArgv, silent: false });
  const n = opts.workers ?? 2;
  const workers = new Set<Worker>();
  let stopping = false;
  let addresses: ListenAddress[] = [];
  const keep = (w: Worker) => {
    workers.add(w);
    w.once('exit', (code) => {
      workers.delete(w);
      if (stopping) return;
      opts.log?.('dns: worker exited, starting another', { pid: w.process.pid, code });
      fork(opts).then(
        (r) => keep(r.worker),
        (err: Error) => opts.log?.('dns: worker restart failed', { error: err.message }),
      );
    });
  };
  try {
    // Every worker binds the same listen list: the primary holds each socket once and shares it
    // (cluster keys sockets by the requested address and port, so port 0 gives one shared port).
    const first = await fork(opts);
    keep(first.worker);
    addresses = first.addresses;
    for (const r of await Promise.all(Array.from({ length: n - 1 }, () => fork(opts)))) keep(r.worker);
  } catch (err) {
    stopping = true;
    await Promise.all([...workers].map((w) => stopWorker(w)));
    throw err;
  }
  return {
    addresses: () => addresses,
    stop: async () => {
      stopping = true;
      await Promise.all([...workers].map((w) => stopWorker(w)));
    },
  };
}
