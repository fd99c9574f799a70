// Server-Sent Events of topology changes: one set of store watches (hosts, networks, endpoints)
// shared by every connected page, started with the first subscriber and cancelled with the last.
// Each change is sent as `event: change` with {type, area, key, revision}; the page re-reads
// /api/topology. `event: hello` is sent once the watches are in place, so a page that reads the
// topology after hello misses nothing.
import type { ServerResponse } from 'node:http';
import { keys } from '../../store/keys.js';
import type { Store, WatchEvent, Watcher } from '../../store/types.js';
import { keyArea } from './instrument-store.js';

/** Seconds between comment lines that keep idle connections (and proxies) from timing out. */
const HEARTBEAT_MS = 15_000;
/** Most pages connected at once (each holds a socket); more get 503. */
export const MAX_SUBSCRIBERS = 64;

export interface EventsLog {
  warn(obj: object, msg: string): void;
}

/** Fans store changes out to SSE responses. */
export class TopologyEvents {
  private readonly clients = new Set<ServerResponse>();
  private watchers: Promise<Watcher[]> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly log: EventsLog,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Turn `res` into an event stream; it ends when the client goes or close() is called. */
  async subscribe(res: ServerResponse): Promise<void> {
    if (this.closed || this.clients.size >= MAX_SUBSCRIBERS) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('too many event streams\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    res.on('close', () => this.drop(res));
    try {
      await this.ensureWatching();
      const revision = await this.store.revision();
      if (!res.writableEnded) res.write(`event: hello\ndata: ${JSON.stringify({ revision })}\n\n`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'topology events: cannot watch the store');
      res.end();
    }
  }

  /** End every stream and cancel the watches. */
  async close(): Promise<void> {
    this.closed = true;
    for (const res of this.clients) res.end();
    this.clients.clear();
    await this.stopWatching();
  }

  private drop(res: ServerResponse): void {
    if (!this.clients.delete(res)) return;
    if (this.clients.size === 0) void this.stopWatching();
  }

  private broadcast(ev: WatchEvent): void {
    const data = JSON.stringify({ type: ev.type, area: keyArea(ev.key), key: ev.key, revision: ev.revision });
    for (const res of this.clients) res.write(`event: change\ndata: ${data}\n\n`);
  }

  private ensureWatching(): Promise<Watcher[]> {
    if (!this.watchers) {
      const onEvent = (ev: WatchEvent) => this.broadcast(ev);
      // A gap means changes were missed: tell pages to re-read everything.
      const onGap = (err: Error) => {
        this.log.warn({ err: err.message }, 'topology events: watch gap');
        this.broadcast({ type: 'put', key: '', value: '', revision: 0 });
      };
      const started = this.watchAll([keys.hosts(), keys.networks(), keys.endpoints()], onEvent, onGap);
      this.watchers = started;
      started.catch(() => {
        if (this.watchers === started) this.watchers = undefined;
      });
      this.heartbeat = setInterval(() => {
        for (const res of this.clients) res.write(': ping\n\n');
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    }
    return this.watchers;
  }

  /** Watch every prefix, or none: a partial failure cancels the watches already made. */
  private async watchAll(prefixes: string[], onEvent: (ev: WatchEvent) => void, onGap: (err: Error) => void): Promise<Watcher[]> {
    const settled = await Promise.allSettled(prefixes.map((p) => this.store.watch(p, onEvent, { onGap })));
    const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((w) => w.cancel().catch(() => {})));
      throw failed.reason;
    }
    return ok;
  }

  private async stopWatching(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const w = this.watchers;
    this.watchers = undefined;
    if (!w) return;
    const list = await w.catch(() => [] as Watcher[]);
    await Promise.all(list.map((x) => x.cancel().catch(() => {})));
  }
}
