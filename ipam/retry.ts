// Retrying store calls that failed with a retryable StoreError (unavailable, deadline). Only
// safe around compare-and-swap writes and reads: a retried write may already have applied.
import { isRetryable } from '../store/errors.js';
import { IpamError } from './errors.js';

export interface RetryPolicy {
  /** Total tries (default 8). */
  attempts: number;
  /** First back-off in ms, doubled per try up to maxMs (defaults 50 / 1000). */
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 50, maxMs: 1000 };

/** Run fn until it succeeds, throws a non-retryable error, or the tries run out (the last error is thrown unchanged). */
export async function retryStore<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn(i);
    } catch (err) {
      if (err instanceof IpamError || !isRetryable(err) || i + 1 >= policy.attempts) throw err;
      await new Promise((r) => setTimeout(r, Math.min(policy.maxMs, policy.baseMs * 2 ** i)));
    }
  }
}
