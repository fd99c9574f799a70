// Keeps a RecordIndex current from the store: a full range per prefix at start, then a watch
// from that read's revision + 1; when the watch reports a gap (compaction, lost resume) the
// prefix is read again and watched afresh. Limits: records are applied one event at a time.
import { keys, parseKey, SKYDNS_PREFIX, skydnsName } from '../store/keys.js';
import type { Store, Watcher } from '../store/types.js';
import { DnsError } from './errors.js';
import type { RecordIndex, RecordKind } from './record-index.js';

/** Receives one line per notable event. */
export type DnsLog = (msg: string, fields?: Record<string, unknown>) => void;

interface Source {
  kind: RecordKind;
  prefix: string;
  /** The record id within its kind, or undefined to ignore the key. */
  id: (key: string) => string | undefined;
}

function segments(key: string): string[] | undefined {
  try {
    return parseKey(key);
  } catch {
    return undefined;
  }
}

/** Which prefixes the index follows. */
export function sources(opts: { skydns: boolean }): Source[] {
  const out: Source[] = [
    { kind: 'network', prefix: keys.networks(), id: (k) => oneOf(segments(k), 2, (p) => p[1]!) },
    { kind: 'endpoint', prefix: keys.endpoints(), id: (k) => oneOf(segments(k), 3, (p) => `${p[1]}\0${p[2]}`) },
    { kind: 'service', prefix: keys.services(), id: (k) => oneOf(segments(k), 2, (p) => p[1]!) },
  ];
  if (opts.skydns) out.push({ kind: 'skydns', prefix: SKYDNS_PREFIX, id: skydnsName });
  return out;
}

const oneOf = (p: string[] | undefined, n: number, f: (p: string[]) => string) => (p && p.length === n ? f(p) : undefined);

/** Mirrors the store's records into an index until stopped. */
export class StoreSync {
  private readonly watchers = new Map<RecordKind, Watcher>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly index: RecordIndex,
    private readonly opts: { skydns: boolean; log?: DnsLog; retryMs?: number },
  ) {}

  /** Read everything and start watching; rejects (DnsError store-failed) when the first read fails. */
  async start(): Promise<void> {
    try {
      for (const src of sources(this.opts)) await this.load(src);
    } catch (err) {
      await this.stop();
      throw new DnsError('store-failed', `cannot read DNS records from ${this.store.description}: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const ws = [...this.watchers.values()];
    this.watchers.clear();
    await Promise.all(ws.map((w) => w.cancel().catch(() => undefined)));
  }

  private async load(src: Source): Promise<void> {
    const res = await this.store.range(src.prefix);
    if (this.stopped) return;
    this.index.clear(src.kind);
    for (const kv of res.kvs) {
      const id = src.id(kv.key);
      if (id !== undefined) this.index.apply(src.kind, id, kv.value);
    }
    const w = await this.store.watch(
      src.prefix,
      (ev) => {
        const id = src.id(ev.key);
        if (id !== undefined) this.index.apply(src.kind, id, ev.type === 'put' ? ev.value : undefined);
      },
      { fromRevision: res.revision + 1, onGap: (err) => this.resync(src, err) },
    );
    if (this.stopped) {
      await w.cancel();
      return;
    }
    this.watchers.set(src.kind, w);
  }

  /** Re-read a prefix after a watch gap, retrying while the store is unreachable. */
  private resync(src: Source, err: Error): void {
    if (this.stopped) return;
    this.opts.log?.('dns: store watch lost, re-reading', { prefix: src.prefix, error: err.message });
    const old = this.watchers.get(src.kind);
    this.watchers.delete(src.kind);
    void (async () => {
      await old?.cancel().catch(() => undefined);
      while (!this.stopped) {
        try {
          await this.load(src);
          return;
        } catch (e) {
          this.opts.log?.('dns: store re-read failed', { prefix: src.prefix, error: (e as Error).message });
          await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1000).unref());
        }
      }
    })();
  }
}
