// `tsoverlay daemon`: resolve the configuration, start the daemon, stop on SIGTERM/SIGINT.
import { configFromEnv, ConfigError, readConfigFile, resolveConfig, type RawConfig } from '../config.js';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import { detectAdvertise } from '../advertise.js';

/** Flags as commander hands them over (camelCase, undefined when not given). */
export type DaemonFlags = RawConfig & { config?: string };

/** Run until a stop signal; resolves with the process exit code. */
export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const { config: configFile, ...flagValues } = flags;
  let cfg;
  try {
    cfg = resolveConfig([
      ...(configFile ? [{ source: `config file ${configFile}`, values: readConfigFile(configFile) }] : []),
      { source: 'environment', values: configFromEnv(process.env) },
      { source: 'flags', values: flagValues },
    ]);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tsoverlay daemon: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(cfg.logLevel, cfg.hostId);
  const daemon = new Daemon(cfg, log, { detectAdvertise: () => detectAdvertise() });
  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'daemon failed to start');
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      daemon.stop().then(
        () => resolve(0),
        (err: Error) => {
          log.error({ err: err.message }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
