// The one error type the test harness raises: a stable `code`, a `kind` and a
// `retryable` flag, as CONVENTIONS.md asks of every error in the project.

export type HarnessErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

/** An error raised by a harness helper (engine start, namespace set-up, cleanup). */
export class HarnessError extends Error {
  constructor(
    readonly code: string,
    readonly kind: HarnessErrorKind,
    message: string,
    readonly retryable = false,
  ) {
    super(`${code}: ${message}`);
    this.name = 'HarnessError';
  }
}
