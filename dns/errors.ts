// DnsError: what dns/ throws for bad configuration and failed start-up (never for bad packets,
// which become DNS response codes). `code` is stable, `kind` is the shared error class.
import { CodedError, type ErrorKind } from '../store/errors.js';

export type DnsErrorCode =
  | 'invalid-listen'
  | 'invalid-upstream'
  | 'invalid-domain'
  | 'listen-failed'
  | 'store-failed';

const KIND: Record<DnsErrorCode, ErrorKind> = {
  'invalid-listen': 'bad-request',
  'invalid-upstream': 'bad-request',
  'invalid-domain': 'bad-request',
  'listen-failed': 'unavailable',
  'store-failed': 'unavailable',
};

/** A DNS server configuration or start-up failure. */
export class DnsError extends CodedError<DnsErrorCode> {
  constructor(code: DnsErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super('DnsError', code, KIND[code], message, opts.retryable ?? KIND[code] === 'unavailable', opts.cause);
  }
}
