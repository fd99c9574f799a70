// Structured logs: one JSON line per decision worth knowing (pino), to stdout.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** A root logger at the given level, tagged with the host id. */
export function createLogger(level: LogLevel, hostId?: string): Logger {
  return pino({ level, base: hostId ? { host: hostId } : {}, timestamp: pino.stdTimeFunctions.isoTime });
}
