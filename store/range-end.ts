// Key-range helpers shared by the backends: the exclusive upper bound of a prefix, in
// code-point order (the order of UTF-8 bytes, which SQLite BINARY and etcd both use).

/**
 * The smallest string greater than every string starting with `prefix`, or undefined
 * when there is none (empty prefix, or a prefix of only U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    let last = cps.pop()! + 1;
    if (last === 0xd800) last = 0xe000; // skip the surrogate block: not a scalar value
    if (last <= 0x10ffff) {
      cps.push(last);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}

