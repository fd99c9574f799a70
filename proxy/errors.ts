// ProxyError: what every proxy/ call throws. `code` is stable, `kind` is the class the
// HTTP/CNI layers map to a status, `retryable` is decided where the error is raised.

/** Error classes shared across tsoverlay (mapped to HTTP statuses / CNI codes upstream). */
export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

/** Stable proxy error codes. */
export type ProxyErrorCode =
  | 'invalid-port'
  | 'invalid-range'
  | 'invalid-protocol'
  | 'invalid-address'
  | 'invalid-name'
  | 'invalid-spec'
  | 'host-ip-not-local'
  | 'port-taken'
  | 'port-exhausted'
  | 'unknown-network'
  | 'unknown-endpoint'
  | 'network-internal'
  | 'iptables-failed'
  | 'store-failed'
  | 'internal';

const KIND: Record<ProxyErrorCode, ErrorKind> = {
  'invalid-port': 'bad-request',
  'invalid-range': 'bad-request',
  'invalid-protocol': 'bad-request',
  'invalid-address': 'bad-request',
  'invalid-name': 'bad-request',
  'invalid-spec': 'bad-request',
  'host-ip-not-local': 'bad-request',
  'port-taken': 'conflict',
  'port-exhausted': 'conflict',
  'unknown-network': 'not-found',
  'unknown-endpoint': 'not-found',
  'network-internal': 'bad-request',
  'iptables-failed': 'internal',
  'store-failed': 'unavailable',
  internal: 'internal',
};

/** A refused request or a failed firewall/store operation. Messages name the field and the value. */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly kind: ErrorKind;
  readonly retryable: boolean;

  constructor(code: ProxyErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.kind = KIND[code];
    this.retryable = opts.retryable ?? false;
  }
}
