// ProxyError: what every proxy/ call throws. `code` is stable, `kind` is the class the
// HTTP/CNI layers map to a status, `retryable` is decided where the error is raised.
import { CodedError, type ErrorKind } from '../store/errors.js';

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
  | 'nft-failed'
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
  'nft-failed': 'internal',
  'store-failed': 'unavailable',
  internal: 'internal',
};

/** A refused request or a failed firewall/store operation. Messages name the field and the value. */
export class ProxyError extends CodedError<ProxyErrorCode> {
  constructor(code: ProxyErrorCode, message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super('ProxyError', code, KIND[code], message, opts.retryable ?? false, opts.cause);
  }
}
