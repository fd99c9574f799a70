// The key-value interface every tsoverlay component persists through.
// Both backends (SQLite, etcd) implement it and pass one conformance suite
// (test/store/conformance.ts). Values are opaque strings (JSON by convention);
// keys are built only by store/keys.ts.

/** One stored key with etcd-style revisions. */
export interface KeyValue {
  key: string;
  value: string;
  /** Store revision at which this key was (last) created. */
  createRevision: number;
  /** Store revision of the last modification of this key. */
  modRevision: number;
  /** Number of modifications since creation (1 after create). */
  version: number;
  /** Lease the key is attached to, if any ("0"-free decimal string). */
  lease?: string;
}

/**
 * A condition of a transaction. A key that does not exist has
 * createRevision = modRevision = version = 0 and never equals any value.
 */
export type Compare =
  | { key: string; target: 'createRevision' | 'modRevision' | 'version'; op: '==' | '!=' | '<' | '>'; value: number }
  | { key: string; target: 'value'; op: '==' | '!='; value: string };

/** One write inside a transaction. */
export type Op =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string };

export interface TxnResult {
  /** True when every compare held and the success ops were applied. */
  succeeded: boolean;
  /** Store revision after the transaction (unchanged when nothing was written). */
  revision: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision the read was served at; a watch from revision + 1 misses nothing. */
  revision: number;
}

export interface RangeOptions {
  /** At most this many keys (in key order). */
  limit?: number;
}

/** A change delivered by a watch, in revision order, exactly once. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value for put; empty for delete. */
  value: string;
  /** Revision of the change (modRevision for put, deletion revision for delete). */
  revision: number;
  /** The previous value when the backend knows it (always for SQLite). */
  prevValue?: string;
}

export interface Watcher {
  /** Stop delivering events; resolves when the watch is torn down. */
  cancel(): Promise<void>;
}

export interface WatchOptions {
  /** Deliver every change with revision >= fromRevision (default: changes after now). */
  fromRevision?: number;
  /**
   * Called when the requested history is no longer available (compacted) or the
   * watch cannot be resumed; the caller should re-read with range() and watch again.
   */
  onGap?: (err: Error) => void;
}

export interface Lease {
  /** Decimal lease id, usable in Op.lease and put(). */
  readonly id: string;
  readonly ttlSeconds: number;
  /** Keep the lease alive until revoke() or release(); keep-alives run in the background. */
  keepAlive(): void;
  /** Revoke now: every key attached is deleted. */
  revoke(): Promise<void>;
  /** Stop keeping alive without revoking (the lease then expires by itself). */
  release(): void;
  /** Called when the lease is found to be lost (expired before a keep-alive). */
  onLost(cb: (err: Error) => void): void;
}

/** The store contract shared by the SQLite and etcd backends. */
export interface Store {
  /** A URL-like description without secrets, for logs. */
  readonly description: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key starting with prefix, in key order. */
  range(prefix: string, opts?: RangeOptions): Promise<RangeResult>;
  /** Put and return the new store revision. */
  put(key: string, value: string, opts?: { lease?: string }): Promise<number>;
  /** Delete one key; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Compare-and-swap: apply success ops when all compares hold, else failure ops. */
  txn(compares: Compare[], success: Op[], failure?: Op[]): Promise<TxnResult>;
  /** Grant a lease of ttl seconds (not yet kept alive). */
  lease(ttlSeconds: number): Promise<Lease>;
  /** Watch every key under prefix. */
  watch(prefix: string, onEvent: (ev: WatchEvent) => void, opts?: WatchOptions): Promise<Watcher>;
  /** The current store revision. */
  revision(): Promise<number>;
  /** Release connections, timers and watches. */
  close(): Promise<void>;
}
