// The multi-host store over etcd v3 (etcd3 client, raw KV/Lease/Watch RPCs). Every unary call
// carries a deadline; etcd3's hidden retries are off: reads are retried here, writes never (a
// timed-out write may have been applied: callers write through txn compare-and-swap).
import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type IOptions, type IRequestOp, type ICompare } from 'etcd3';
import { checkKey, checkLeaseTtl, checkOp, checkPrefix, checkValue, checkWatch } from './args.js';
import { StoreError, isRetryable } from './errors.js';
import { etcdError, hostBreaker, neverSent, passThrough } from './etcd-faults.js';
import { EtcdWatch, type EtcdKeys } from './etcd-watch.js';
import { KeptLease } from './lease-keeper.js';
import type { Compare, KeyValue, Lease, Op, RangeOptions, RangeResult, Store, TxnResult, WatchEvent, WatchOptions, Watcher } from './types.js';
import type { EtcdConfig } from './url.js';

const PAGE = 5000;
const CMP_RESULT = { '==': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

/** Byte-wise end of a prefix range, as etcd expects ("\0" = every key after key). */
function bytesPrefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export interface EtcdStoreOptions {
  description?: string;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A Store over an etcd cluster. Construct with EtcdStore.connect(). */
export class EtcdStore implements Store, EtcdKeys {
  readonly description: string;
  private readonly ns: Buffer;
  private readonly timeoutMs: number;
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<KeptLease>();
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    cfg: EtcdConfig,
    private readonly opts: EtcdStoreOptions,
  ) {
    this.description = opts.description ?? `etcd://${cfg.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}${cfg.prefix}`;
    this.ns = Buffer.from(cfg.prefix, 'utf8');
    this.timeoutMs = cfg.timeoutMs ?? 1500;
  }

  /** Build the client and check that the cluster answers (StoreError unavailable, retryable, if not). */
  static async connect(cfg: EtcdConfig, opts: EtcdStoreOptions = {}): Promise<EtcdStore> {
    const timeoutMs = cfg.timeoutMs ?? 1500;
    const options: IOptions = {
      hosts: cfg.endpoints,
      dialTimeout: timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      grpcOptions: { 'grpc.max_receive_message_length': 64 << 20, 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
      faultHandling: { global: passThrough() as never, host: () => hostBreaker() as never },
    };
    try {
      if (cfg.tls) {
        options.credentials = {
          rootCertificate: cfg.tls.caFile ? readFileSync(cfg.tls.caFile) : (undefined as unknown as Buffer),
          privateKey: cfg.tls.keyFile ? readFileSync(cfg.tls.keyFile) : undefined,
          certChain: cfg.tls.certFile ? readFileSync(cfg.tls.certFile) : undefined,
        };
      }
    } catch (err) {
      throw new StoreError('bad-request', `cannot read the TLS files of ${opts.description ?? 'the etcd store'}: ${(err as Error).message}`);
    }
    if (cfg.auth) options.auth = { ...cfg.auth, callOptions: () => ({ deadline: Date.now() + timeoutMs }) };
    const store = new EtcdStore(new Etcd3(options), cfg, opts);
    try {
      await store.revision();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** Namespace a key. */
  toWire(key: string): Buffer {
    return this.ns.length === 0 ? Buffer.from(key, 'utf8') : Buffer.concat([this.ns, Buffer.from(key, 'utf8')]);
  }

  /** Strip the namespace from a key etcd returned. */
  fromWire(key: Buffer): string {
    return key.subarray(this.ns.length).toString('utf8');
  }

  /** The [key, range_end] covering every key under prefix (inside the namespace). */
  prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
    if (prefix === '' && this.ns.length === 0) return { key: Buffer.from([0]), range_end: Buffer.from([0]) };
    const key = this.toWire(prefix);
    return { key, range_end: bytesPrefixEnd(key) };
  }

  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.read('get', () => this.client.kv.range({ key: this.toWire(key) }));
    return res.kvs[0] ? this.toKeyValue(res.kvs[0]) : undefined;
  }

  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    checkPrefix(prefix, 'range');
    const want = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const { key, range_end } = this.prefixRange(prefix);
    const kvs: KeyValue[] = [];
    let from = key;
    let revision = 0;
    // Pages at one revision, so a large range is one consistent snapshot.
    for (;;) {
      const limit = Math.min(PAGE, want - kvs.length);
      const res = await this.read('range', () => this.client.kv.range({ key: from, range_end, limit, revision: revision || undefined }));
      if (!revision) revision = Number(res.header.revision);
      for (const kv of res.kvs) kvs.push(this.toKeyValue(kv));
      if (!res.more || kvs.length >= want || res.kvs.length === 0) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { kvs, revision };
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    checkKey(key);
    checkValue(value);
    const lease = leaseId(opts.lease);
    const res = await this.call('put', () => this.client.kv.put({ key: this.toWire(key), value: Buffer.from(value, 'utf8'), lease }));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const res = await this.call('delete', () => this.client.kv.deleteRange({ key: this.toWire(key) }));
    return res.deleted !== '0';
  }

  async txn(compares: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const req = { compare: compares.map((c) => this.compare(c)), success: success.map((o) => this.op(o)), failure: failure.map((o) => this.op(o)) };
    const res = await this.call('txn', () => this.client.kv.txn(req));
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  async lease(ttlSeconds: number): Promise<Lease> {
    checkLeaseTtl(ttlSeconds);
    const res = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    if (res.error) throw new StoreError('internal', `lease grant: ${res.error}`);
    // etcd may raise a short TTL to its minimum: keep alive by what it granted.
    const lease = new KeptLease(res.ID, Number(res.TTL) || ttlSeconds, { refresh: (id) => this.refreshLease(id), revoke: (id) => this.revokeLease(id) }, (l) =>
      this.leases.delete(l),
    );
    this.leases.add(lease);
    return lease;
  }

  async watch(prefix: string, onEvent: (ev: WatchEvent) => void, opts: WatchOptions = {}): Promise<Watcher> {
    checkWatch(prefix, opts);
    this.ensureOpen();
    const w = new EtcdWatch(this.client, this, prefix, onEvent, opts, { timeoutMs: this.timeoutMs, log: this.opts.log }, () => this.watches.delete(w));
    this.watches.add(w);
    try {
      await w.started();
    } catch (err) {
      await w.cancel();
      throw etcdError(err, `watch ${prefix}`);
    }
    return w;
  }

  async revision(): Promise<number> {
    const res = await this.read('revision', () => this.client.kv.range({ key: Buffer.from([0]), count_only: true }));
    return Number(res.header.revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.leases) l.stop();
    this.leases.clear();
    await Promise.all([...this.watches].map((w) => w.cancel()));
    this.client.close();
  }

  private async refreshLease(id: string): Promise<boolean> {
    const stream = await this.call('lease keep-alive', () => this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.timeoutMs }));
    try {
      const ttl = await new Promise<string>((resolve, reject) => {
        stream.on('data', (res) => resolve(res.TTL));
        stream.on('error', reject);
        stream.on('end', () => reject(new StoreError('unavailable', 'lease keep-alive stream ended')));
        stream.write({ ID: id });
      });
      return Number(ttl) > 0;
    } catch (err) {
      throw etcdError(err, 'lease keep-alive');
    } finally {
      stream.end();
    }
  }

  private async revokeLease(id: string): Promise<void> {
    try {
      await this.call('lease revoke', () => this.client.leaseClient.leaseRevoke({ ID: id }));
    } catch (err) {
      if ((err as StoreError).code !== 'lease-lost') throw err; // revoking a gone lease is done
    }
  }

  private toKeyValue(kv: IKeyValue): KeyValue {
    const out: KeyValue = {
      key: this.fromWire(kv.key),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
    };
    if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
    return out;
  }

  private compare(c: Compare): ICompare {
    checkKey(c.key);
    const base = { key: this.toWire(c.key), result: CMP_RESULT[c.op] };
    if (!base.result) throw new StoreError('bad-request', `unknown compare op ${JSON.stringify(c.op)}`);
    switch (c.target) {
      case 'createRevision':
        return { ...base, target: 'Create', create_revision: c.value };
      case 'modRevision':
        return { ...base, target: 'Mod', mod_revision: c.value };
      case 'version':
        return { ...base, target: 'Version', version: c.value };
      case 'value':
        return { ...base, target: 'Value', value: Buffer.from(c.value, 'utf8') };
      default:
        throw new StoreError('bad-request', `unknown compare target ${JSON.stringify((c as { target?: unknown }).target)}`);
    }
  }

  private op(o: Op): IRequestOp {
    checkOp(o);
    switch (o.type) {
      case 'put':
        return { request_put: { key: this.toWire(o.key), value: Buffer.from(o.value, 'utf8'), lease: leaseId(o.lease) } };
      case 'delete':
        return { request_delete_range: { key: this.toWire(o.key) } };
      case 'deletePrefix':
        return { request_delete_range: this.prefixRange(o.prefix) };
      default:
        throw new StoreError('bad-request', `unknown op type ${JSON.stringify((o as { type?: unknown }).type)}`);
    }
  }

  /**
   * One logical attempt; errors become StoreError (retryable for unavailable/timeout). A call
   * that never reached a member (connection refused) is sent again at once, since etcd3
   * picks a member at random and a dead one is skipped once its breaker opens.
   */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.ensureOpen();
      try {
        return await fn();
      } catch (err) {
        if (!neverSent(err) || attempt >= 4) throw etcdError(err, what);
      }
    }
  }

  /** Reads are idempotent: retry on another member within one deadline's worth of time. */
  private async read<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.call(what, fn);
      } catch (err) {
        if (!isRetryable(err) || attempt >= 2 || Date.now() - start > this.timeoutMs || this.closed) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('unavailable', `${this.description} is closed`, { retryable: false });
  }
}


function leaseId(lease: string | undefined): string | undefined {
  if (lease === undefined || lease === '' || lease === '0') return undefined;
  if (!/^[1-9][0-9]{0,18}$/.test(lease)) throw new StoreError('bad-request', `bad lease id "${lease}"`);
  return lease;
}
