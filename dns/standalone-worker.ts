// Entry of one clustered standalone DNS process (see standalone-cluster.ts): serves with the
// options in the environment, reports to the primary, stops when told or when the primary goes.
import { serveStandalone, type StandaloneOptions } from './standalone.js';
import { WORKER_ENV, type WorkerMessage } from './standalone-cluster.js';

const send = (m: WorkerMessage) => process.send?.(m);

async function main(): Promise<void> {
  const opts = JSON.parse(process.env[WORKER_ENV] ?? '{}') as StandaloneOptions;
  let handle;
  try {
    handle = await serveStandalone({ ...opts, workers: 0, log: (msg, fields) => console.error(msg, JSON.stringify(fields ?? {})) });
  } catch (err) {
    send({ type: 'failed', code: String((err as { code?: unknown }).code ?? 'internal'), message: (err as Error).message });
    process.exit(1);
  }
  const h = handle;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void h.stop().finally(() => process.exit(0));
  };
  process.on('message', (m: WorkerMessage) => m.type === 'stop' && stop());
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  send({ type: 'ready', addresses: h.addresses() });
}

void main();
