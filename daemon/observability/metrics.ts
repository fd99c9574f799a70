// The daemon's Prometheus metrics: one Registry made by the composition root (never prom-client's
// global default), and typed recorders the root hands to DNS, the proxy, reconcilers and the store
// wrapper. Every name starts with `tsoverlay_`. Store-derived gauges live in state-gauges.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Buckets in seconds for fast local operations (store calls, DNS answers): 0.1 ms … 5 s. */
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets in seconds for bulk work (firewall syncs, reconcile passes): 1 ms … 30 s. */
const SLOW_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type DnsTransport = 'udp' | 'tcp';
/** Where an answer came from: our records, or an upstream resolver. */
export type DnsSource = 'local' | 'forwarded';

/** What the DNS server reports (one call per event; cheap, synchronous). */
export interface DnsRecorder {
  /** A query was received. */
  query(transport: DnsTransport): void;
  /** A reply was sent with this rcode name ('NOERROR', 'NXDOMAIN', 'SERVFAIL', …), `seconds` after the query arrived. */
  answer(rcode: string, source: DnsSource, seconds: number): void;
  /** A query was passed to an upstream resolver. */
  forwarded(): void;
  /** A query failed without a reply (reason: 'malformed', 'upstream-timeout', 'upstream-error', 'internal', …). */
  error(reason: string): void;
}

/** What the firewall reports after each sync. */
export interface ProxyRecorder {
  /** A sync (iptables-restore transaction) finished; `rules` counts our rules per table after it. */
  sync(seconds: number, rules: Partial<Record<'raw' | 'nat' | 'filter' | 'mangle', number>>, family?: 4 | 6): void;
  /** A sync failed. */
  syncError(reason: string): void;
}

/** What reconcilers report. */
export interface ReconcileRecorder {
  /** `count` objects of `object` kind ('link', 'address', 'route', 'fdb', 'neighbour', 'rule', 'allocation', …) were repaired. */
  repaired(object: string, count?: number): void;
  /** A reconcile pass of `component` finished (ok = no error). */
  pass(component: string, seconds: number, ok: boolean): void;
}

/** What the store wrapper (instrument-store.ts) reports. */
export interface StoreRecorder {
  /** One store call (`op`: get, range, put, delete, txn, lease, watch, revision) took `seconds`; error code when it failed. */
  request(op: string, seconds: number, errorCode?: string): void;
  /** A watch event was delivered for a watch on `prefix` (top-level key area, e.g. 'endpoints'). */
  watchEvent(prefix: string): void;
  /** Seconds from a write's completion (here) to the watch delivering its revision. */
  watchDelay(seconds: number): void;
  /** A watch reported a gap (compacted history, resume failure). */
  watchGap(prefix: string): void;
}

export interface MetricsOptions {
  /** Also export Node process metrics (CPU, memory, event loop) prefixed `tsoverlay_process_`/`tsoverlay_nodejs_` (default true). */
  processMetrics?: boolean;
  /** Static labels on every sample, e.g. `{ host: 'h1' }`. */
  defaultLabels?: Record<string, string>;
}

/** Label values are free text from callers: bound their length so one bad caller cannot blow up a scrape. */
function lv(v: string): string {
  return v.length > 64 ? v.slice(0, 64) : v;
}

/** The registry and the recorders; make one per daemon and pass the parts down. */
export class Metrics {
  readonly registry: Registry;
  readonly dns: DnsRecorder;
  readonly proxy: ProxyRecorder;
  readonly reconcile: ReconcileRecorder;
  readonly store: StoreRecorder;

  constructor(opts: MetricsOptions = {}) {
    this.registry = new Registry();
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'tsoverlay_' });
    this.dns = dnsRecorder(this.registry);
    this.proxy = proxyRecorder(this.registry);
    this.reconcile = reconcileRecorder(this.registry);
    this.store = storeRecorder(this.registry);
  }

  /** The text exposition (what /metrics serves). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

function dnsRecorder(registers: Registry): DnsRecorder {
  const reg = [registers];
  const queries = new Counter({ name: 'tsoverlay_dns_queries_total', help: 'DNS queries received', labelNames: ['transport'], registers: reg });
  const answers = new Counter({ name: 'tsoverlay_dns_answers_total', help: 'DNS replies sent, by rcode and source', labelNames: ['rcode', 'source'], registers: reg });
  const forwarded = new Counter({ name: 'tsoverlay_dns_forwarded_total', help: 'DNS queries passed to an upstream resolver', registers: reg });
  const errors = new Counter({ name: 'tsoverlay_dns_errors_total', help: 'DNS queries that failed without a reply', labelNames: ['reason'], registers: reg });
  const latency = new Histogram({
    name: 'tsoverlay_dns_request_duration_seconds',
    help: 'Time from receiving a DNS query to sending its reply',
    labelNames: ['source'],
    buckets: FAST_BUCKETS,
    registers: reg,
  });
  return {
    query: (transport) => queries.inc({ transport }),
    answer: (rcode, source, seconds) => {
      answers.inc({ rcode: lv(rcode), source });
      latency.observe({ source }, seconds);
    },
    forwarded: () => forwarded.inc(),
    error: (reason) => errors.inc({ reason: lv(reason) }),
  };
}

function proxyRecorder(registers: Registry): ProxyRecorder {
  const reg = [registers];
  const duration = new Histogram({
    name: 'tsoverlay_proxy_sync_duration_seconds',
    help: 'Duration of one firewall sync (rule build and iptables-restore)',
    labelNames: ['family'],
    buckets: SLOW_BUCKETS,
    registers: reg,
  });
  const rules = new Gauge({ name: 'tsoverlay_proxy_rules', help: 'Rules in our chains after the last sync, per table', labelNames: ['table', 'family'], registers: reg });
  const errors = new Counter({ name: 'tsoverlay_proxy_sync_errors_total', help: 'Firewall syncs that failed', labelNames: ['reason'], registers: reg });
  return {
    sync: (seconds, counts, family = 4) => {
      duration.observe({ family: String(family) }, seconds);
      for (const [table, n] of Object.entries(counts)) rules.set({ table, family: String(family) }, n ?? 0);
    },
    syncError: (reason) => errors.inc({ reason: lv(reason) }),
  };
}

function reconcileRecorder(registers: Registry): ReconcileRecorder {
  const reg = [registers];
  const repairs = new Counter({ name: 'tsoverlay_reconcile_repairs_total', help: 'Objects a reconciler found wrong or missing and fixed', labelNames: ['object'], registers: reg });
  const passes = new Histogram({
    name: 'tsoverlay_reconcile_pass_duration_seconds',
    help: 'Duration of one reconcile pass',
    labelNames: ['component', 'result'],
    buckets: SLOW_BUCKETS,
    registers: reg,
  });
  return {
    repaired: (object, count = 1) => repairs.inc({ object: lv(object) }, count),
    pass: (component, seconds, ok) => passes.observe({ component: lv(component), result: ok ? 'ok' : 'error' }, seconds),
  };
}

function storeRecorder(registers: Registry): StoreRecorder {
  const reg = [registers];
  const duration = new Histogram({
    name: 'tsoverlay_store_request_duration_seconds',
    help: 'Duration of store calls, by operation',
    labelNames: ['op'],
    buckets: FAST_BUCKETS,
    registers: reg,
  });
  const errors = new Counter({ name: 'tsoverlay_store_errors_total', help: 'Store calls that failed, by operation and error code', labelNames: ['op', 'code'], registers: reg });
  const events = new Counter({ name: 'tsoverlay_store_watch_events_total', help: 'Watch events delivered, by key area', labelNames: ['prefix'], registers: reg });
  const delay = new Histogram({
    name: 'tsoverlay_store_watch_delay_seconds',
    help: "Time from a write made by this process to its watch event (only this process's own writes are timed)",
    buckets: FAST_BUCKETS,
    registers: reg,
  });
  const gaps = new Counter({ name: 'tsoverlay_store_watch_gaps_total', help: 'Watches that lost history (compacted or not resumable)', labelNames: ['prefix'], registers: reg });
  return {
    request: (op, seconds, errorCode) => {
      duration.observe({ op }, seconds);
      if (errorCode !== undefined) errors.inc({ op, code: lv(errorCode) });
    },
    watchEvent: (prefix) => events.inc({ prefix: lv(prefix) }),
    watchDelay: (seconds) => delay.observe(seconds),
    watchGap: (prefix) => gaps.inc({ prefix: lv(prefix) }),
  };
}
