// The store package's public surface: the interface, key layout, errors, backends, opening by URL.
export type * from './types.js';
export { keys, PREFIX, segment, unsegment, parseKey, lastSegment, KeyError } from './keys.js';
export { StoreError, isRetryable, type StoreErrorCode, type ErrorKind } from './errors.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
// EtcdStore is not re-exported: importing etcd3 costs ~150 ms, paid only via openStore('etcd://…')
// or an explicit import of store/etcd.js.
export { openStore, defaultStoreUrl, type OpenStoreOptions } from './open.js';
export { parseStoreUrl, redact, type EtcdConfig, type StoreTarget } from './url.js';
export { prefixEnd } from './range-end.js';
