// DriverError: what the bridge/host/overlay drivers throw for their own refusals. `code` is
// stable, `kind` is the class the HTTP/CNI layers map to a status, `retryable` is set here.
// Kernel (KernelError) and store (StoreError) failures pass through unwrapped.
import { CodedError, type ErrorKind } from '../../../store/errors.js';

/** Stable driver error codes. `invalid-config` maps to CNI 7, `interface-exists` to CNI 102. */
export type DriverErrorCode =
  | 'invalid-config'
  | 'unknown-network'
  | 'unknown-endpoint'
  | 'wrong-driver'
  | 'network-exists'
  | 'network-other-host'
  | 'bridge-in-use'
  | 'endpoint-exists'
  | 'endpoint-joined'
  | 'interface-exists'
  | 'no-firewall'
  | 'corrupt-record'
  | 'store-contention'
  | 'teardown-incomplete'
  | 'vni-taken'
  | 'vni-exhausted'
  | 'network-removing';

const KIND: Record<DriverErrorCode, ErrorKind> = {
  'invalid-config': 'bad-request',
  'unknown-network': 'not-found',
  'unknown-endpoint': 'not-found',
  'wrong-driver': 'bad-request',
  'network-exists': 'conflict',
  'network-other-host': 'conflict',
  'bridge-in-use': 'conflict',
  'endpoint-exists': 'conflict',
  'endpoint-joined': 'conflict',
  'interface-exists': 'conflict',
  'no-firewall': 'unavailable',
  'corrupt-record': 'internal',
  'store-contention': 'unavailable',
  'teardown-incomplete': 'unavailable',
  'vni-taken': 'conflict',
  'vni-exhausted': 'unavailable',
  'network-removing': 'unavailable',
};

const RETRYABLE = new Set<DriverErrorCode>(['store-contention', 'teardown-incomplete', 'network-removing']);

/** A driver-level refusal or failure, with a message naming the field and value at fault. */
export class DriverError extends CodedError<DriverErrorCode> {
  /** Field and value for validation failures; causes for teardown failures. */
  readonly details: { field?: string; value?: unknown; causes?: string[] };

  constructor(code: DriverErrorCode, message: string, details: DriverError['details'] = {}, opts: { cause?: unknown } = {}) {
    super('DriverError', code, KIND[code], message, RETRYABLE.has(code), opts.cause);
    this.details = details;
  }
}

/** "invalid <field> <value>: <why>" — a bad-request error naming the key and the value. */
export function invalidConfig(field: string, value: unknown, why: string): DriverError {
  return new DriverError('invalid-config', `invalid ${field} ${JSON.stringify(value)}: ${why}`, { field, value });
}

/** True for a DriverError with this code. */
export function isDriverError(err: unknown, code?: DriverErrorCode): err is DriverError {
  return err instanceof DriverError && (code === undefined || err.code === code);
}
