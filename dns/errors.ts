// DnsError: what dns/ throws for bad configuration and failed start-up (never for bad packets,
// which become DNS response codes). `code` is stable, `kind` is the shared error class.

export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

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
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  readonly kind: ErrorKind;
  readonly retryable: boolean;

  constructor(code: DnsErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DnsError';
    this.code = code;
    this.kind = KIND[code];
    this.retryable = opts.retryable ?? KIND[code] === 'unavailable';
  }
}
