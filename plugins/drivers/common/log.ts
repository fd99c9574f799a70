// The logger shape drivers write to: pino's `(obj, msg)` form, so the daemon passes its pino
// child logger and tests pass a collector. Drivers never configure logging themselves.

/** A pino-compatible logger; drivers use only these four calls. */
export interface DriverLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const nothing = (): void => {};

/** A logger that drops everything (the default when none is given). */
export const silentLogger: DriverLogger = Object.freeze({ debug: nothing, info: nothing, warn: nothing, error: nothing });
