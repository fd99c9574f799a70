// Thin command wrappers over the modules that do the work: `install cni|docker`,
// `dns serve`. Each returns an exit code; errors with a `kind` print as one line.
import { installCni } from '../../plugins/cni/install.js';
import { installDocker } from './install-docker.js';

/** `tsoverlay install cni --dir DIR [--conf-dir DIR] [--store URL]`. */
export async function installCniCommand(opts: { dir: string; confDir?: string; store?: string; json?: boolean }): Promise<number> {
  const r = await installCni(opts.dir, { confDir: opts.confDir, store: opts.store });
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    for (const p of r.plugins) process.stdout.write(`${p.path} -> ${p.target}${p.kind === 'launcher' ? ' (compiled launcher)' : ''}\n`);
    for (const e of r.examples) process.stdout.write(`example conflist: ${e}\n`);
  }
  return 0;
}

/** `tsoverlay install docker --dir DIR …`: plugin spec files and a systemd unit, all inside DIR. */
export async function installDockerCommand(opts: {
  dir: string;
  pluginDir?: string;
  socket?: string;
  execPath?: string;
  stateDir?: string;
  store?: string;
}): Promise<number> {
  const r = installDocker(opts);
  for (const f of r.files) process.stdout.write(`${f}\n`);
  return 0;
}

/** `tsoverlay dns serve --store URL --listen ADDR:PORT[,…]`: runs until SIGTERM/SIGINT. */
export async function dnsServeCommand(opts: {
  store?: string;
  stateDir: string;
  listen: string;
  domain?: string;
  upstream?: string;
  recursionFrom?: string;
}): Promise<number> {
  const { serveStandalone } = await import('../../dns/standalone.js');
  const { createLogger } = await import('../log.js');
  const log = createLogger('info');
  const split = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
  const handle = await serveStandalone({
    storeUrl: opts.store ?? `sqlite://${opts.stateDir}/store.db`,
    listen: split(opts.listen) ?? [],
    domain: opts.domain,
    upstreams: split(opts.upstream),
    recursionFrom: split(opts.recursionFrom),
    log: (msg: string, fields?: Record<string, unknown>) => log.info(fields ?? {}, msg),
  });
  log.info({ listen: handle.addresses() }, 'dns serving');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await handle.stop();
  return 0;
}
