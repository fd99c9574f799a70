// Seeded input generation for the fuzz suites: a small PRNG, "interesting" values (unicode,
// NUL, path separators, shell metacharacters, huge and overflowing numbers), structured
// mutation of JSON-like values and raw text/byte mutation. Pure: no I/O, no global state.

/** mulberry32: 32-bit state, fast, good enough for input generation (not for crypto). */
export class Rng {
  private state: number;
  /** When set, the domain generators below make only valid values (mutation comes later). */
  strict = false;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let x = this.state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A valid choice, or (unless strict) with probability `pBad` an invalid one. */
  vpick<T>(good: readonly T[], bad: readonly T[], pBad = 0.3): T {
    return !this.strict && bad.length > 0 && this.chance(pBad) ? this.pick(bad) : this.pick(good);
  }

  /** Call one of the functions (each equally likely). */
  oneOf<T>(...makers: Array<() => T>): T {
    return this.pick(makers)();
  }
}

/** The seed of case `i` of a run: every case reproduces on its own (see runner.ts). */
export function caseSeed(runSeed: number, i: number): number {
  let h = (runSeed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ i, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---- interesting scalars ----------------------------------------------------------------------

/** Strings that break parsers, paths, command lines and terminals. */
export const NASTY_STRINGS: readonly string[] = [
  '', ' ', '\t', '\n', '\r\n', '\0', 'a\0b', '\u0001', '\u007f', '\u001b[31m',
  '.', '..', '/', '../', '../../etc/passwd', '/etc/passwd', 'a/b', '\\', 'a\\..\\b', '//', './x',
  ';', '; rm -rf /', '$(id)', '`id`', '|', '||', '&&', '&', '>', '<', '>>', '*', '?', '~', '!', '#',
  "'", '"', "'\"", '${IFS}', '$HOME', '-', '--', '-rf', '--help', '-h', '--version', '-V', '=', '%', '%s%n', '%00', '%zz', '%2F', '%2e%2e',
  'eth0', 'lo', 'eth0 ', ' eth0', 'eth 0', 'eth:0', 'eth/0', 'eth%0', 'a'.repeat(15), 'a'.repeat(16), 'a'.repeat(64), 'a'.repeat(256),
  'tsbr-', 'null', 'undefined', 'true', 'false', '0', '-1', '1e999', 'NaN', 'Infinity', '0x10', '1.5', '065535', '65536',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  'é', 'ß', 'İ', 'ﬁ', 'Ω', '中文', '🐳', '👩‍👩‍👧', 'e\u0301', '\u200b', '\u200e', '\u202e', '\ufeff', '\ufffd', '\ud800', '\udc00', '\ud83d', 'ａｂｃ',
  '10.0.0.1', '10.0.0.0/24', '10.0.0.1/33', '10.0.0.256', '010.0.0.1', '1.2.3', '::1', '::ffff:10.0.0.1', 'fe80::1%eth0', 'fd00::/64', '2001:db8::/129', '::/0', '0.0.0.0/0',
  '02:42:ac:11:00:02', '01:00:5e:00:00:01', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '02-42-ac-11-00-02', '02:42:ac:11:00', 'AgAAAAAA',
  'unix:///tmp/x', 'tcp://127.0.0.1:1', 'sqlite:///tmp/x.db', 'etcd://127.0.0.1:1', 'http://', 'file:///etc/passwd',
];

/** Numbers at and around every boundary the inputs have. */
export const NASTY_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 2, 7, 67, 68, 69, 1499, 1500, 9000, 65534, 65535, 65536, 65537, -65535,
  127, 128, 129, 255, 256, 32, 33, 64, 128, 129, 4095, 4096, 16777215, 16777216,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 32 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, 5e-324,
  0.5, 1.5, 80.0000001, 3.14159,
];

/** A random string from the nasty list, random characters, or (2%) a huge string. */
export function nastyString(rng: Rng): string {
  const r = rng.next();
  if (r < 0.4) return rng.pick(NASTY_STRINGS);
  if (r < 0.65) return randomChars(rng, rng.int(24));
  if (r < 0.8) return rng.pick(NASTY_STRINGS) + rng.pick(NASTY_STRINGS);
  if (r < 0.98) return randomChars(rng, rng.int(8)) + rng.pick(NASTY_STRINGS);
  return hugeString(rng);
}

/** A long string: 300 B … 200 kB, sometimes multi-byte. */
export function hugeString(rng: Rng): string {
  const unit = rng.pick(['a', 'é', '🐳', '/', ' ', '%', '\\u0000', 'ab.']);
  const n = rng.pick([300, 4097, 70_000, 200_000]);
  return unit.repeat(Math.ceil(n / unit.length));
}

const CHAR_CLASSES: ReadonlyArray<readonly string[]> = [
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  '_.-:/@=+,%',
  ' \t\n\r\0\u0001\u001f\u007f',
  ';|&$`\'"<>*?~!#(){}[]\\',
  'éßΩ中🐳\u200b\u202e\ufeff',
].map((chars) => [...chars]);

/** n characters drawn from mixed classes (ASCII mostly, controls, metacharacters, unicode). */
export function randomChars(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    s += rng.pick(CHAR_CLASSES[rng.chance(0.6) ? 0 : rng.int(CHAR_CLASSES.length)]!);
  }
  return s;
}

/** A boundary number, a random integer, or a random float. */
export function nastyNumber(rng: Rng): number {
  switch (rng.int(4)) {
    case 0:
    case 1:
      return rng.pick(NASTY_NUMBERS);
    case 2:
      return rng.range(-100000, 100000);
    default:
      return (rng.next() - 0.5) * 10 ** rng.int(20);
  }
}

/** Any JSON value, nested up to `depth`. */
export function anyJson(rng: Rng, depth = 2): unknown {
  const k = rng.int(depth > 0 ? 8 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return nastyNumber(rng);
    case 3:
    case 4:
      return nastyString(rng);
    case 5:
      return rng.pick([{}, [], '', 0]);
    case 6:
      return Array.from({ length: rng.int(4) }, () => anyJson(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) o[rng.chance(0.7) ? randomChars(rng, rng.range(1, 6)) : nastyString(rng)] = anyJson(rng, depth - 1);
      return o;
    }
  }
}

/** A value of another JSON type than `v` (or a nasty one of the same type). */
export function wrongType(rng: Rng, v: unknown): unknown {
  const options: Array<() => unknown> = [
    () => null,
    () => rng.chance(0.5),
    () => nastyNumber(rng),
    () => nastyString(rng),
    () => [v],
    () => ({ value: v }),
    () => [],
    () => ({}),
    () => (typeof v === 'number' ? String(v) : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : nastyString(rng)),
  ];
  return rng.pick(options)();
}

// ---- structured mutation ----------------------------------------------------------------------

type Json = unknown;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every path (list of keys/indexes) into a JSON value, the root included. */
export function paths(v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((e, i) => paths(e, [...prefix, i], out));
  else if (isPlainObject(v)) for (const [k, e] of Object.entries(v)) paths(e, [...prefix, k], out);
  return out;
}

/** A deep copy of plain JSON data (strings kept exactly, lone surrogates included). */
export function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, clone(e)])) as T;
  return v;
}

function getAt(v: Json, path: Array<string | number>): Json {
  let cur: any = v;
  for (const p of path) cur = cur?.[p];
  return cur;
}

/** Replace (or delete, with `remove`) the value at `path`; the root is returned replaced. */
function setAt(root: Json, path: Array<string | number>, value: Json, remove = false): Json {
  if (path.length === 0) return value;
  const parent: any = getAt(root, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (Array.isArray(parent) && typeof last === 'number') {
    if (remove) parent.splice(last, 1);
    else parent[last] = value;
  } else if (isPlainObject(parent)) {
    if (remove) delete parent[last as string];
    else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

/**
 * Mutate a JSON value in 1..`max` steps: drop a field, change a value's type, put a nasty
 * string/number in, add an unknown key, grow an array, replace a subtree with noise.
 * The input is not modified.
 */
export function mutateJson(rng: Rng, value: Json, max = 3): Json {
  let root = clone(value);
  const steps = rng.range(1, max);
  for (let s = 0; s < steps; s++) {
    const all = paths(root);
    const path = rng.pick(all);
    const cur = getAt(root, path);
    switch (rng.int(9)) {
      case 0:
        if (path.length > 0) root = setAt(root, path, undefined, true);
        break;
      case 1:
        root = setAt(root, path, wrongType(rng, cur));
        break;
      case 2:
        root = setAt(root, path, typeof cur === 'number' ? nastyNumber(rng) : nastyString(rng));
        break;
      case 3:
        if (isPlainObject(cur)) cur[rng.chance(0.5) ? nastyString(rng) : randomChars(rng, 5)] = anyJson(rng, 1);
        else root = setAt(root, path, nastyString(rng));
        break;
      case 4:
        if (Array.isArray(cur)) {
          // Many copies of a small element, few of a big one: inputs stay under a few MB.
          const item = cur[0] ?? anyJson(rng, 1);
          const big = (JSON.stringify(item)?.length ?? 0) > 2000;
          cur.push(...Array.from({ length: big ? rng.range(1, 2) : rng.pick([1, 2, 50, 1000]) }, () => clone(item)));
        }
        else root = setAt(root, path, [cur, cur]);
        break;
      case 5:
        root = setAt(root, path, anyJson(rng, 2));
        break;
      case 6:
        if (typeof cur === 'string') root = setAt(root, path, mutateText(rng, cur));
        else root = setAt(root, path, nastyNumber(rng));
        break;
      case 7:
        if (typeof cur === 'string') root = setAt(root, path, cur + rng.pick(['/..', ';id', '\0', ' ', '🐳', '\u202e', 'x'.repeat(300)]));
        else root = setAt(root, path, null);
        break;
      default:
        if (typeof cur === 'number') root = setAt(root, path, rng.pick([cur + 1, cur - 1, -cur, cur * 65536, cur + 0.5]));
        else root = setAt(root, path, wrongType(rng, cur));
    }
  }
  return root;
}

// ---- raw mutation -----------------------------------------------------------------------------

const TEXT_TOKENS: readonly string[] = ['{', '}', '[', ']', '"', ',', ':', '\\', '\\u0000', '\\ud800', 'null', '1e999', '-', '\n', '\0', '/', '..', '🐳', '#', '&', '*', '!!', '---', '%'];

/** Character-level mutation: insert, delete, flip, duplicate, truncate, splice tokens. */
export function mutateText(rng: Rng, text: string, max = 4): string {
  let s = text;
  for (let n = rng.range(1, max); n > 0; n--) {
    const at = rng.int(s.length + 1);
    switch (rng.int(7)) {
      case 0:
        s = s.slice(0, at) + rng.pick(TEXT_TOKENS) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + rng.range(1, 8));
        break;
      case 2:
        s = s.slice(0, at) + String.fromCharCode(rng.int(0x80)) + s.slice(at + 1);
        break;
      case 3:
        s = s.slice(0, at);
        break;
      case 4:
        s = s.slice(0, at) + s.slice(rng.int(s.length + 1));
        break;
      case 5:
        s = s.slice(0, at) + randomChars(rng, rng.range(1, 6)) + s.slice(at);
        break;
      default:
        s = s.slice(0, at) + nastyString(rng).slice(0, 300) + s.slice(at);
    }
  }
  return s;
}

/** Byte-level mutation of a buffer (flips, random bytes, truncation, invalid UTF-8). */
export function mutateBytes(rng: Rng, buf: Buffer, max = 4): Buffer {
  let b = Buffer.from(buf);
  for (let n = rng.range(1, max); n > 0; n--) {
    const at = rng.int(Math.max(1, b.length));
    switch (rng.int(5)) {
      case 0:
        if (b.length) b[at] = rng.int(256);
        break;
      case 1:
        if (b.length) b[at]! ^= 1 << rng.int(8);
        break;
      case 2:
        b = b.subarray(0, at);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0]])), b.subarray(at)]);
        break;
      default:
        b = Buffer.concat([b, Buffer.from(Array.from({ length: rng.int(32) }, () => rng.int(256)))]);
    }
  }
  return b;
}

// ---- domain values (mostly valid, sometimes near misses) ---------------------------------------

/** Interface names: valid ones, and every kind of near miss. */
export function ifname(rng: Rng): string {
  if (rng.strict || rng.chance(0.6)) return rng.pick(['eth0', 'eth1', 'net1', 'veth0', 'tsbr-x', 'br_0', 'a', 'e.1', 'a'.repeat(15), 'eth-0']);
  return rng.pick(['', '.', '..', 'eth 0', 'eth/0', 'eth:0', 'a'.repeat(16), 'é'.repeat(8), 'eth\0', 'eth\n', '-eth', 'eth$0', 'eth;0', 'é', '🐳', 'ab\u007f', nastyString(rng)]);
}

/** IPv4/IPv6 addresses, valid or nearly. */
export function ip(rng: Rng, family: 4 | 6 = rng.chance(0.7) ? 4 : 6): string {
  if (rng.strict || rng.chance(0.8)) {
    return family === 4 ? `10.${rng.int(256)}.${rng.int(256)}.${rng.range(1, 254)}` : `fd00:${rng.int(65536).toString(16)}::${rng.range(1, 65535).toString(16)}`;
  }
  return rng.pick(['10.0.0.256', '10.0.0', '10.0.0.1.1', ' 10.0.0.1', '10.0.0.1/24', '::1%lo', 'fe80::1%eth0', ':::1', '1::2::3', '0x0a.0.0.1', '10.0.0.01', '', nastyString(rng)]);
}

/** CIDRs, valid (host bits sometimes set) or nearly. */
export function cidr(rng: Rng, family: 4 | 6 = rng.chance(0.7) ? 4 : 6): string {
  if (rng.strict || rng.chance(0.8)) {
    if (family === 4) return `10.${rng.int(256)}.${rng.pick([0, 0, 0, rng.int(256)])}.0/${rng.pick([8, 16, 20, 24, 24, 24, 28, 30, 31, 32, 0])}`;
    return `fd${rng.int(256).toString(16).padStart(2, '0')}:${rng.int(65536).toString(16)}::/${rng.pick([48, 64, 64, 64, 112, 120, 127, 128, 0])}`;
  }
  return rng.pick(['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/024', '10.0.0.0/24/24', '10.0.0.0', '/24', 'fd00::/129', '10.0.0.0/1e1', '10.0.0.0/ 24', nastyString(rng)]);
}

/** MAC addresses, valid unicast or near misses (multicast, zero, short, odd separators). */
export function mac(rng: Rng): string {
  if (rng.strict || rng.chance(0.7)) return ['02', ...Array.from({ length: 5 }, () => rng.int(256).toString(16).padStart(2, '0'))].join(':');
  return rng.pick(['01:00:5e:00:00:01', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '02-42-ac-11-00-02', '0242.ac11.0002', 'zz:42:ac:11:00:02', nastyString(rng)]);
}

/** Ports: valid, zero, negative, overflowing, fractional, as strings. */
export function port(rng: Rng): unknown {
  if (rng.strict || rng.chance(0.6)) return rng.range(1, 65535);
  return rng.pick([0, -1, 65536, 70000, 2 ** 31, 1.5, '80', '8080', '', 'http', null, -65535, 1e21]);
}

/** Ids of the CNI/Docker kind ([A-Za-z0-9][A-Za-z0-9_.-]*), valid or nearly. */
export function objectId(rng: Rng): string {
  if (rng.strict || rng.chance(0.7)) return rng.chance(0.5) ? randomHex(rng, 64) : `c${randomHex(rng, rng.range(1, 12))}`;
  return rng.pick(['', '-x', '.x', 'a b', 'a/b', '../x', 'a;b', 'é', 'a'.repeat(300), nastyString(rng)]);
}

/** n lower-case hex digits. */
export function randomHex(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[rng.int(16)];
  return s;
}
