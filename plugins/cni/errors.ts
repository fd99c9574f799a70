// CNI errors: the wire error class with the spec's numeric codes, and the one mapping
// from tsoverlay's internal errors (string `code`, `kind`, `retryable`) to those codes.
import type { ErrorWire } from './types.js';

/** Numeric codes: 0–99 from the CNI SPEC §5, 100+ tsoverlay's own (DESIGN.md). */
export const ErrorCode = Object.freeze({
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  PoolExhausted: 100,
  AlreadyTaken: 101,
  InterfaceExists: 102,
  KernelRefused: 110,
  Internal: 999,
} as const);

/** An error that is printed as `{cniVersion, code, msg, details}` on stdout. */
export class CniError extends Error {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
  /** Internal-style fields so the CLI/HTTP layers can handle it like any other error. */
  readonly kind: 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';
  readonly retryable: boolean;

  constructor(code: number, msg: string, details?: string) {
    super(details ? `${msg}: ${details}` : msg);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    if (details !== undefined && details !== '') this.details = details;
    this.kind = kindOf(code);
    this.retryable = code === ErrorCode.TryAgainLater;
  }

  /** The wire object for the given protocol version. */
  toWire(cniVersion: string): ErrorWire {
    const out: ErrorWire = { cniVersion, code: this.code, msg: this.msg };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

function kindOf(code: number): CniError['kind'] {
  if (code === ErrorCode.TryAgainLater || code === 50 || code === 51) return 'unavailable';
  if (code === ErrorCode.UnknownContainer) return 'not-found';
  if (code === ErrorCode.PoolExhausted || code === ErrorCode.AlreadyTaken || code === ErrorCode.InterfaceExists) return 'conflict';
  if (code === ErrorCode.Internal || code === ErrorCode.KernelRefused || code === ErrorCode.IoFailure) return 'internal';
  return 'bad-request';
}

/**
 * Internal error codes (the stable string `code` set where an error is raised) that
 * map to a specific CNI code. Anything not listed falls back to `kind`/`retryable`.
 */
const CODE_MAP: Readonly<Record<string, number>> = Object.freeze({
  'unsupported-version': ErrorCode.IncompatibleVersion,
  unsupported: ErrorCode.UnsupportedField,
  'unsupported-field': ErrorCode.UnsupportedField,
  'unknown-container': ErrorCode.UnknownContainer,
  'invalid-env': ErrorCode.InvalidEnvironment,
  'invalid-config': ErrorCode.InvalidConfig,
  'invalid-key': ErrorCode.InvalidConfig,
  'store-unavailable': ErrorCode.TryAgainLater,
  'store-busy': ErrorCode.TryAgainLater,
  SQLITE_BUSY: ErrorCode.TryAgainLater,
  SQLITE_LOCKED: ErrorCode.TryAgainLater,
  'pool-exhausted': ErrorCode.PoolExhausted,
  exhausted: ErrorCode.PoolExhausted,
  'no-auto-pool': ErrorCode.PoolExhausted,
  'pool-overlap': ErrorCode.InvalidConfig,
  'pool-conflict': ErrorCode.InvalidConfig,
  'unknown-pool': ErrorCode.InvalidConfig,
  'address-taken': ErrorCode.AlreadyTaken,
  'address-reserved': ErrorCode.AlreadyTaken,
  'address-in-use': ErrorCode.AlreadyTaken,
  'port-taken': ErrorCode.AlreadyTaken,
  'port-in-use': ErrorCode.AlreadyTaken,
  taken: ErrorCode.AlreadyTaken,
  'interface-exists': ErrorCode.InterfaceExists,
});

/** An errno name as Node and our netlink layer report it ("EEXIST", "EPERM", …). */
const ERRNO = /^E[A-Z0-9]{2,15}$/;

interface InternalErrorLike {
  code?: unknown;
  kind?: unknown;
  retryable?: unknown;
  message?: unknown;
  /** A string, or netlink's KernelErrorDetails ({ field, value, stderr, … }). */
  details?: unknown;
  /** Escape hatch: an error may carry the exact CNI code it wants. */
  cniCode?: unknown;
}

function detailsOf(d: unknown): { text?: string; field: boolean } {
  if (typeof d === 'string') return { text: d, field: false };
  if (typeof d !== 'object' || d === null) return { field: false };
  const o = d as { stderr?: unknown; field?: unknown };
  return { text: typeof o.stderr === 'string' && o.stderr.trim() !== '' ? o.stderr.trim() : undefined, field: o.field !== undefined };
}

/**
 * Turn anything thrown inside a handler into a CniError. Order: an existing CniError;
 * an explicit numeric `cniCode`; the string `code` (CODE_MAP, then an errno name →
 * 110 with the errno in the message, except a value refused before any syscall, which
 * names a `details.field` → 7); `retryable` or kind 'unavailable' → 11; kind
 * 'bad-request' → 7; otherwise 999.
 */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as InternalErrorLike;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const { text: details, field } = detailsOf(e.details);
  if (typeof e.cniCode === 'number' && Number.isInteger(e.cniCode) && e.cniCode > 0) {
    return new CniError(e.cniCode, message, details);
  }
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined && Object.hasOwn(CODE_MAP, code)) return new CniError(CODE_MAP[code]!, message, details);
  if (code !== undefined && ERRNO.test(code)) {
    if (field) return new CniError(ErrorCode.InvalidConfig, message, details);
    return new CniError(ErrorCode.KernelRefused, message.includes(code) ? message : `${code}: ${message}`, details);
  }
  if (e.retryable === true || e.kind === 'unavailable') return new CniError(ErrorCode.TryAgainLater, message, details);
  if (e.kind === 'bad-request') return new CniError(ErrorCode.InvalidConfig, message, details);
  return new CniError(ErrorCode.Internal, message, details);
}

/** Shorthand for the common "field X has bad value Y" config error (code 7). */
export function invalidConfig(field: string, value: unknown, why: string): CniError {
  return new CniError(ErrorCode.InvalidConfig, `invalid ${field} ${JSON.stringify(value)}: ${why}`);
}

/** Shorthand for "field X with value Y is not supported" (code 2; the spec wants key and value). */
export function unsupportedField(field: string, value: unknown, why?: string): CniError {
  return new CniError(ErrorCode.UnsupportedField, `unsupported ${field} ${JSON.stringify(value)}${why ? `: ${why}` : ''}`);
}

/** Shorthand for a bad environment variable (code 4; the spec wants the variable's name). */
export function invalidEnv(name: string, value: string | undefined, why: string): CniError {
  return new CniError(
    ErrorCode.InvalidEnvironment,
    value === undefined || value === '' ? `${name} ${why}` : `${name}=${JSON.stringify(value)} ${why}`,
  );
}
