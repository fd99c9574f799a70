// Work the engine need not wait for, per endpoint: a join prepared while the engine builds the
// sandbox, and Leave's teardown done after the reply (DeleteEndpoint queues behind it and waits). Tasks of one endpoint run
// in order; a network's deletion and the daemon's stop wait for them (drain).
import type { Logger } from '../backend.js';

interface Pending {
  networkId: string;
  done: Promise<void>;
}

/** Per-endpoint ordered background tasks and prepared results. */
export class EndpointTasks<P> {
  private readonly tasks = new Map<string, Pending>();
  private readonly prepared = new Map<string, { networkId: string; p: Promise<P> }>();

  constructor(private readonly log: Logger) {}

  /** Start `fn` now; `take(endpointId)` later gets its result (or its error). */
  prepare(networkId: string, endpointId: string, fn: () => Promise<P>): void {
    const p = fn();
    p.catch(() => undefined); // reported by whoever takes it
    this.prepared.set(endpointId, { networkId, p });
  }

  /** The prepared promise for an endpoint, once (undefined when none was started). */
  take(endpointId: string): Promise<P> | undefined {
    const entry = this.prepared.get(endpointId);
    this.prepared.delete(endpointId);
    return entry?.p;
  }

  /**
   * Run fn after the endpoint's earlier tasks (and after its prepared work settled); failures are
   * logged: teardown is best-effort, and what stays behind is in the store for reconcile/GC.
   * Resolves (never rejects) when fn has run: a caller may answer before or after it.
   */
  later(networkId: string, endpointId: string, what: string, fn: () => Promise<void>): Promise<void> {
    const before = this.tasks.get(endpointId)?.done ?? Promise.resolve();
    const prepared = this.take(endpointId);
    const done = before
      .then(() => prepared?.then(() => undefined, () => undefined))
      .then(fn)
      .catch((err: unknown) => this.log.error({ network: networkId, endpoint: endpointId, err: (err as Error).message }, `${what} failed (the record stays for reconcile)`));
    const entry: Pending = { networkId, done };
    this.tasks.set(endpointId, entry);
    void done.then(() => {
      if (this.tasks.get(endpointId) === entry) this.tasks.delete(endpointId);
    });
    return done;
  }

  /** Wait for every task (of one network, or all). */
  async drain(networkId?: string): Promise<void> {
    const mine = (t: { networkId: string }) => networkId === undefined || t.networkId === networkId;
    const waits = [...this.tasks.values()].filter(mine).map((t) => t.done);
    const prepared = [...this.prepared.values()].filter(mine).map((e) => e.p.then(() => undefined, () => undefined));
    await Promise.all([...waits, ...prepared]);
  }
}
