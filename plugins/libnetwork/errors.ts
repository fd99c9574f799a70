// Errors raised by the libnetwork plugin layer and the classes the HTTP layer maps to statuses.
// Backends may throw any Error carrying `kind` (and `code`); anything else is 'internal'.

import { CodedError, type ErrorKind } from '../../store/errors.js';

export type { ErrorKind };

const KINDS: ReadonlySet<string> = new Set(['bad-request', 'not-found', 'conflict', 'unavailable', 'internal']);

/** An error with a stable `code`, a `kind` and a `retryable` flag set where it is raised. */
export class PluginError extends CodedError<string> {
  constructor(code: string, kind: ErrorKind, message: string, retryable = false) {
    super('PluginError', code, kind, message, retryable);
  }
}

/** A request value the engine (or the user through it) sent that we cannot accept. */
export function badRequest(code: string, message: string): PluginError {
  return new PluginError(code, 'bad-request', message);
}

/** The bad-request error for one option: always names the key and the offending value. */
export function badOption(key: string, value: unknown, why: string): PluginError {
  return badRequest('invalid-option', `invalid value ${show(value)} for option ${key}: ${why}`);
}

/** The bad-request error for one body field of a request. */
export function badField(field: string, value: unknown, why: string): PluginError {
  return badRequest('invalid-field', `invalid ${field} ${show(value)}: ${why}`);
}

/** The class of any thrown value: its own `kind` when it has a known one, else 'internal'. */
export function kindOf(err: unknown): ErrorKind {
  const kind = (err as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' && KINDS.has(kind) ? (kind as ErrorKind) : 'internal';
}

/** The stable code of any thrown value ('internal' when it carries none). */
export function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'internal';
}

/** The text shown to the Docker user for any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  return typeof err === 'string' && err ? err : 'internal error';
}

/** Render a value for an error message: strings quoted, long values cut. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
