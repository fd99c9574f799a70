// One etcd watch stream per Watcher, resumed after any stream failure from the revision after
// the last one delivered (etcd sends a revision's events whole), so nothing is missed or repeated.
import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { StoreError } from './errors.js';
import { etcdError } from './etcd-faults.js';
import type { WatchEvent, WatchOptions, Watcher } from './types.js';

/** Key translation supplied by the store (namespace prefix). */
export interface EtcdKeys {
  fromWire(key: Buffer): string;
  prefixRange(prefix: string): { key: Buffer; range_end: Buffer };
}

interface WatchConfig {
  timeoutMs: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const MAX_BACKOFF = 2000;

/** A resumable watch over one prefix. */
export class EtcdWatch implements Watcher {
  /** The first revision not yet delivered (undefined until the server fixes "now"). */
  private nextRev: number | undefined;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private cancelled = false;
  private backoff = 100;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly firstCreated: Promise<void>;
  private created!: () => void;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly prefix: string,
    private readonly onEvent: (ev: WatchEvent) => void,
    private readonly opts: WatchOptions,
    private readonly cfg: WatchConfig,
    private readonly onDone: () => void,
  ) {
    this.nextRev = opts.fromRevision;
    this.firstCreated = new Promise((resolve) => (this.created = resolve));
    void this.connect();
  }

  /** Resolves once the server has created the watch; rejects if that takes longer than the deadline. */
  started(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreError('unavailable', `watch ${this.prefix}: etcd did not create the watch within ${this.cfg.timeoutMs} ms`)), this.cfg.timeoutMs);
    });
    return Promise.race([this.firstCreated, deadline]).finally(() => clearTimeout(timer));
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.retryTimer);
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.onDone();
  }

  private async connect(): Promise<void> {
    if (this.cancelled) return;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.client.watchClient.watch();
    } catch (err) {
      this.broken(err);
      return;
    }
    if (this.cancelled) {
      stream.cancel();
      return;
    }
    this.stream = stream;
    stream.on('data', (res) => {
      if (this.stream === stream) this.onData(res);
    });
    stream.on('error', (err) => {
      if (this.stream === stream) this.broken(err);
    });
    stream.on('end', () => {
      if (this.stream === stream) this.broken(new StoreError('unavailable', 'watch stream ended'));
    });
    const { key, range_end } = this.keys.prefixRange(this.prefix);
    stream.write({ create_request: { key, range_end, start_revision: this.nextRev, prev_kv: true, progress_notify: true } });
  }

  private onData(res: IWatchResponse): void {
    if (res.canceled) {
      const compacted = Number(res.compact_revision);
      const err =
        compacted > 0
          ? new StoreError('compacted', `watch ${this.prefix}: revision ${this.nextRev} is compacted (oldest kept ${compacted})`)
          : new StoreError('unavailable', `watch ${this.prefix} canceled by etcd: ${res.cancel_reason || 'no reason given'}`, { retryable: false });
      void this.cancel();
      this.opts.onGap?.(err);
      return;
    }
    if (res.created) {
      this.backoff = 100;
      this.nextRev ??= Number(res.header.revision) + 1;
      this.created();
    }
    if (res.events.length === 0) {
      // A progress notification: everything up to header.revision has been sent.
      if (!res.created && this.nextRev !== undefined) this.nextRev = Math.max(this.nextRev, Number(res.header.revision) + 1);
      return;
    }
    let thrown: unknown;
    let last = 0;
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (this.nextRev !== undefined && rev < this.nextRev) continue; // already delivered before a reconnect
      last = rev;
      const out: WatchEvent = {
        type: String(ev.type).toLowerCase() === 'delete' ? 'delete' : 'put',
        key: this.keys.fromWire(ev.kv.key),
        value: String(ev.type).toLowerCase() === 'delete' ? '' : ev.kv.value.toString('utf8'),
        revision: rev,
      };
      if (ev.prev_kv) out.prevValue = ev.prev_kv.value.toString('utf8');
      if (this.cancelled) return;
      try {
        this.onEvent(out);
      } catch (err) {
        thrown ??= err;
      }
    }
    if (last) this.nextRev = last + 1;
    if (thrown !== undefined) queueMicrotask(() => { throw thrown; });
  }

  private broken(err: unknown): void {
    if (this.cancelled) return;
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    const e = etcdError(err, `watch ${this.prefix}`);
    this.cfg.log?.('store watch reconnecting', { prefix: this.prefix, fromRevision: this.nextRev, error: e.message, inMs: this.backoff });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), this.backoff);
    this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
  }
}
