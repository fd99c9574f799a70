// The IPAM's own errors: a stable `code`, the class the HTTP/CNI layers map to a status, and
// `retryable` decided here. Store failures (StoreError) are never wrapped: they pass through.
import { CodedError, type ErrorKind } from '../store/errors.js';

/** Stable IPAM error codes (front ends map them to CNI codes / Docker `Error` replies). */
export type IpamErrorCode =
  | 'invalid-cidr'
  | 'invalid-address'
  | 'invalid-range'
  | 'invalid-gateway'
  | 'invalid-owner'
  | 'invalid-request'
  | 'unknown-address-space'
  | 'gateway-outside-subnet'
  | 'range-outside-subnet'
  | 'address-outside-pool'
  | 'address-reserved'
  | 'address-taken'
  | 'owner-conflict'
  | 'pool-exhausted'
  | 'unknown-pool'
  | 'pool-overlap'
  | 'pool-conflict'
  | 'no-auto-pool'
  | 'contention';

const KIND: Record<IpamErrorCode, ErrorKind> = {
  'invalid-cidr': 'bad-request',
  'invalid-address': 'bad-request',
  'invalid-range': 'bad-request',
  'invalid-gateway': 'bad-request',
  'invalid-owner': 'bad-request',
  'invalid-request': 'bad-request',
  'unknown-address-space': 'bad-request',
  'gateway-outside-subnet': 'bad-request',
  'range-outside-subnet': 'bad-request',
  'address-outside-pool': 'bad-request',
  'address-reserved': 'conflict',
  'address-taken': 'conflict',
  'owner-conflict': 'conflict',
  'pool-exhausted': 'conflict',
  'unknown-pool': 'not-found',
  'pool-overlap': 'conflict',
  'pool-conflict': 'conflict',
  'no-auto-pool': 'conflict',
  // Compare-and-swap lost too many times in a row: the same call may succeed later.
  contention: 'unavailable',
};

/** An IPAM failure; the message names the offending value. */
export class IpamError extends CodedError<IpamErrorCode> {
  constructor(code: IpamErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super('IpamError', code, KIND[code], message, code === 'contention', opts.cause);
  }
}

/** True when err is an IpamError with the given code. */
export function isIpamError(err: unknown, code?: IpamErrorCode): err is IpamError {
  return err instanceof IpamError && (code === undefined || err.code === code);
}
