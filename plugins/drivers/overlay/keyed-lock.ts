// One operation at a time per key (a network id), within this process: creating a network's first
// endpoint here (realise) and deleting its last (teardown) must not interleave.

/** A queue of async operations per key; keys without pending work hold no memory. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Run fn after every earlier fn of the same key has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
