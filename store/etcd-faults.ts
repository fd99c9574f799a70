// etcd fault handling: gRPC/etcd3 errors -> StoreError (retryable set here), and the per-host
// breaker etcd3 calls through, so a dead member is skipped for a while instead of retried.
import { GRPCDeadlineExceededError, isRecoverableError, EtcdLeaseInvalidError, GRPCInvalidArgumentError, ClientClosedError, EtcdPermissionDeniedError, EtcdAuthenticationFailedError } from 'etcd3';
import { StoreError } from './errors.js';

/** The error a broken host throws without calling through (etcd3 then tries the next host). */
class HostDownError extends Error {
  readonly isBrokenCircuitError = true;
}

/** Translate anything an etcd call threw into a StoreError. */
export function etcdError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const opts = { cause: err };
  if (err instanceof EtcdLeaseInvalidError || /lease not found/.test(msg)) return new StoreError('lease-lost', `${what}: ${msg}`, opts);
  if (err instanceof GRPCDeadlineExceededError) return new StoreError('timeout', `${what}: etcd did not answer in time (${msg})`, opts);
  if (err instanceof GRPCInvalidArgumentError) return new StoreError('bad-request', `${what}: ${msg}`, opts);
  if (err instanceof ClientClosedError) return new StoreError('unavailable', `${what}: the store is closed`, { ...opts, retryable: false });
  if (err instanceof EtcdPermissionDeniedError || err instanceof EtcdAuthenticationFailedError) {
    return new StoreError('unavailable', `${what}: etcd refused our credentials (${msg})`, { ...opts, retryable: false });
  }
  if ((err instanceof Error && isRecoverableError(err)) || (err as { isBrokenCircuitError?: boolean })?.isBrokenCircuitError) {
    return new StoreError('unavailable', `${what}: etcd unavailable (${msg})`, opts);
  }
  return new StoreError('internal', `${what}: ${msg}`, opts);
}

/**
 * True when the call certainly never reached etcd (no connection to that member), so even a
 * write may be sent again to another member without risk of applying twice.
 */
export function neverSent(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : '';
  return /No connection established|ECONNREFUSED|connection refused/i.test(msg) && !/Connection dropped/i.test(msg);
}

/** The part of cockatiel's IPolicy that etcd3's connection pool uses. */
export interface CallPolicy {
  execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T>;
}

/** Calls straight through: no hidden retries (a retried write could apply twice). */
export function passThrough(): CallPolicy {
  const signal = new AbortController().signal;
  return { execute: async (fn) => fn({ signal }) };
}

/**
 * A per-host breaker: after `failures` consecutive recoverable errors the host is skipped for
 * `openMs`, then one call is let through to probe it.
 */
export function hostBreaker(failures = 2, openMs = 1000): CallPolicy {
  const signal = new AbortController().signal;
  let consecutive = 0;
  let openUntil = 0;
  let probing = false;
  return {
    async execute(fn) {
      const now = Date.now();
      if (consecutive >= failures && (now < openUntil || probing)) throw new HostDownError('etcd host marked down');
      if (consecutive >= failures) probing = true;
      try {
        const out = await fn({ signal });
        consecutive = 0;
        return out;
      } catch (err) {
        if (err instanceof Error && isRecoverableError(err)) {
          consecutive++;
          if (consecutive >= failures) openUntil = Date.now() + openMs;
        }
        throw err;
      } finally {
        probing = false;
      }
    },
  };
}
