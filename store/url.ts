// Store URL parsing, without loading any backend. Forms:
//   sqlite:///abs/path/store.db
//   etcd://[user[:password]@]h1:2379,h2:2379[/prefix][?ca=FILE&cert=FILE&key=FILE&user=U&password=P&timeoutMs=N]
//   etcds://…  (same, TLS; the system CAs when no ca= is given)
import { isAbsolute, normalize } from 'node:path';
import { StoreError } from './errors.js';

/** Where and how to reach an etcd cluster. */
export interface EtcdConfig {
  /** Client URLs, e.g. http://127.0.0.1:2379. */
  endpoints: string[];
  /** Namespace prefix put before every key (e.g. "/cluster-a"), or "" for none. */
  prefix: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  auth?: { username: string; password: string };
  /** Deadline of each call in ms (default 1500). */
  timeoutMs?: number;
}

export type StoreTarget =
  | { kind: 'sqlite'; file: string; description: string }
  | { kind: 'etcd'; config: EtcdConfig; description: string };

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
const PREFIX = /^(\/[A-Za-z0-9._~:@=+-]+)+\/?$/;

function bad(url: string, why: string): StoreError {
  // The reason may quote a piece of the URL (a host list, a query key): redact it too. The URL
  // is JSON-quoted so control characters in it cannot break the line or drive a terminal.
  return new StoreError('bad-request', `bad store URL ${JSON.stringify(redact(url))}: ${redact(why)}`);
}

/** The URL (or a message quoting one) with every password replaced, for messages. */
export function redact(url: string): string {
  return url.replace(/(:\/\/[^:/@\s"]*:)[^@/\s"]*@/g, '$1***@').replace(/([?&]password=)[^&\s"]*/g, '$1***');
}

/** Parse a store URL; throws StoreError bad-request naming the URL (password redacted). */
export function parseStoreUrl(url: string): StoreTarget {
  if (typeof url !== 'string' || url.length === 0) throw new StoreError('bad-request', 'empty store URL');
  const m = /^([a-z0-9]+):\/\/(.*)$/.exec(url);
  if (!m) throw bad(url, 'expected sqlite:///path or etcd://host:port[,host:port…][/prefix]');
  const [, scheme, rest] = m as unknown as [string, string, string];
  if (scheme === 'sqlite') return parseSqlite(url, rest);
  if (scheme === 'etcd' || scheme === 'etcds') return parseEtcd(url, rest, scheme === 'etcds');
  throw bad(url, `unknown scheme "${scheme}" (sqlite, etcd, etcds)`);
}

/** decodeURIComponent, with a malformed %-escape reported as a bad URL (not a URIError). */
function decode(url: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    // `part` itself is not shown: it may be the password.
    throw bad(url, `malformed %-escape in the ${what}`);
  }
}

function parseSqlite(url: string, rest: string): StoreTarget {
  if (rest.includes('?') || rest.includes('#')) throw bad(url, 'sqlite URLs take no query');
  const file = decode(url, rest, 'path');
  if (file.includes('\0')) throw bad(url, 'the path contains a NUL');
  if (!isAbsolute(file)) throw bad(url, 'the path must be absolute (sqlite:///var/lib/tsoverlay/store.db)');
  if (file.endsWith('/')) throw bad(url, 'the path names a directory');
  const norm = normalize(file);
  // Kernel pseudo-filesystems hold no database, and a recursive mkdir under /proc never returns.
  if (/^\/(proc|sys|dev)(\/|$)/.test(norm)) throw bad(url, 'the path is on a kernel pseudo-filesystem (/proc, /sys, /dev)');
  return { kind: 'sqlite', file: norm, description: `sqlite://${norm}` };
}

function parseEtcd(url: string, rest: string, tls: boolean): StoreTarget {
  const [beforeQuery, query = ''] = splitOnce(rest, '?');
  let [authority, path = ''] = splitOnce(beforeQuery, '/');
  let auth: EtcdConfig['auth'];
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const [user, password = ''] = splitOnce(authority.slice(0, at), ':');
    auth = { username: decode(url, user, 'user name'), password: decode(url, password, 'password') };
    authority = authority.slice(at + 1);
  }
  const hosts = authority.split(',');
  for (const h of hosts) {
    const hm = HOST_PORT.exec(h);
    if (!hm || Number(hm[2]) < 1 || Number(hm[2]) > 65535) throw bad(url, `"${h}" is not host:port`);
  }
  const prefix = path === '' ? '' : `/${path}`.replace(/\/$/, '');
  if (prefix !== '' && (!PREFIX.test(prefix) || prefix.split('/').some((seg) => seg === '.' || seg === '..'))) {
    throw bad(url, `bad prefix "${prefix}" (segments of A-Z a-z 0-9 . _ ~ : @ = + -, no "." or "..")`);
  }
  const cfg: EtcdConfig = { endpoints: [], prefix };
  const params = new URLSearchParams(query);
  const tlsOpts: NonNullable<EtcdConfig['tls']> = {};
  for (const [k, v] of params) {
    if (k === 'ca') tlsOpts.caFile = v;
    else if (k === 'cert') tlsOpts.certFile = v;
    else if (k === 'key') tlsOpts.keyFile = v;
    else if (k === 'user') auth = { username: v, password: auth?.password ?? '' };
    else if (k === 'password') auth = { username: auth?.username ?? '', password: v };
    else if (k === 'timeoutMs' && /^[1-9][0-9]{0,6}$/.test(v)) cfg.timeoutMs = Number(v);
    else throw bad(url, `unknown or bad query parameter "${k}"`);
  }
  if ((tlsOpts.certFile === undefined) !== (tlsOpts.keyFile === undefined)) throw bad(url, 'cert= and key= go together');
  const useTls = tls || Object.keys(tlsOpts).length > 0;
  if (useTls) cfg.tls = tlsOpts;
  if (auth) {
    if (!auth.username) throw bad(url, 'a password without a user name');
    cfg.auth = auth;
  }
  cfg.endpoints = hosts.map((h) => `${useTls ? 'https' : 'http'}://${h}`);
  const description = `${useTls ? 'etcds' : 'etcd'}://${auth ? `${auth.username}@` : ''}${hosts.join(',')}${prefix}`;
  return { kind: 'etcd', config: cfg, description };
}

function splitOnce(s: string, sep: string): [string, string?] {
  const i = s.indexOf(sep);
  return i < 0 ? [s] : [s.slice(0, i), s.slice(i + 1)];
}
