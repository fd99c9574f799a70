// The one error type both store backends raise. `code` is stable, `kind` is the class the
// HTTP/CNI layers map to a status, `retryable` is decided where the error is raised.

/** Stable store error codes. */
export type StoreErrorCode =
  | 'unavailable'
  | 'timeout'
  | 'conflict'
  | 'not-found'
  | 'bad-request'
  | 'compacted'
  | 'lease-lost'
  | 'internal';

/** Error classes shared across tsoverlay (mapped to HTTP statuses / CNI codes upstream). */
export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

/**
 * The shape of every tsoverlay error above the kernel layer (CONVENTIONS rule 10): a stable
 * string `code`, the `kind` the HTTP/CNI layers map to a status, and `retryable` decided where
 * the error is raised. Each layer subclasses it with its own code union and code → kind table.
 */
export abstract class CodedError<C extends string> extends Error {
  readonly code: C;
  readonly kind: ErrorKind;
  readonly retryable: boolean;

  protected constructor(name: string, code: C, kind: ErrorKind, message: string, retryable: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = name;
    this.code = code;
    this.kind = kind;
    this.retryable = retryable;
  }
}

const KIND: Record<StoreErrorCode, ErrorKind> = {
  unavailable: 'unavailable',
  timeout: 'unavailable',
  conflict: 'conflict',
  'not-found': 'not-found',
  'bad-request': 'bad-request',
  compacted: 'conflict',
  'lease-lost': 'not-found',
  internal: 'internal',
};

const RETRYABLE: Record<StoreErrorCode, boolean> = {
  unavailable: true,
  timeout: true,
  conflict: true,
  'not-found': false,
  'bad-request': false,
  compacted: false,
  'lease-lost': false,
  internal: false,
};

/**
 * A store failure. `retryable` is true when the same call may succeed later
 * (store unreachable, busy, deadline exceeded). A retried *write* after a timeout may
 * already have been applied: callers must write through compare-and-swap (txn on
 * modRevision / createRevision == 0) so that a second application is refused.
 */
export class StoreError extends CodedError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super('StoreError', code, KIND[code], message, opts.retryable ?? RETRYABLE[code], opts.cause);
  }
}

/** True for a StoreError (or any error carrying retryable=true). */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}
