// Commander's own errors quote the user's words raw (`unknown command 'X'`): a word with a
// line break, an escape sequence or megabytes of text would reach the terminal as is. This
// rewrites those errors so every echoed word is escaped and capped.

/** Longest echo of one word; the rest is replaced by a count. */
export const MAX_ECHO = 64;

/** `word` made printable: control and format characters escaped, capped at MAX_ECHO. */
export function echoWord(word: string): string {
  const escaped = JSON.stringify(word.length > MAX_ECHO ? word.slice(0, MAX_ECHO) : word).slice(1, -1);
  // JSON leaves C1 controls, bidi overrides and similar format characters alone.
  const safe = escaped.replace(/[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return word.length > MAX_ECHO ? `${safe}…(${word.length} characters)` : safe;
}

/**
 * Commander's error `message` with each command-line word it quotes (any of `argv`, or the
 * `--flag` part of `--flag=value`) echoed by echoWord; control characters left over (none
 * should be) are escaped too, keeping the message's own line breaks.
 */
export function sanitizeCliError(message: string, argv: readonly string[]): string {
  let out = message;
  const words = new Set<string>();
  for (const a of argv) {
    words.add(a);
    const eq = a.indexOf('=');
    if (a.startsWith('-') && eq > 0) words.add(a.slice(0, eq));
  }
  // Longest first, so a word is not replaced inside a longer one that contains it.
  for (const w of [...words].sort((a, b) => b.length - a.length)) {
    if (w === '' || echoWord(w) === w) continue;
    out = out.split(`'${w}'`).join(`'${echoWord(w)}'`);
  }
  // eslint-disable-next-line no-control-regex
  return out.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
