// The VERSION fast path for every CNI entry file: imports nothing at all, so a
// runtime probing every plugin of every conflist pays only Node's own start-up.
// Everything else (ADD/DEL/…) is the heavy module the entry imports afterwards.

/** Every CNI spec version tsoverlay's plugins accept and emit (0.2.0 and older are not). */
export const SUPPORTED_VERSIONS: readonly string[] = Object.freeze(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);

/** The newest spec version implemented (used when the input names none). */
export const CURRENT_VERSION = '1.1.0';

/** VERSION reads at most this much stdin; the answer only needs `cniVersion`. */
const VERSION_STDIN_LIMIT = 64 * 1024;

/**
 * The VERSION answer for the given stdin text: `cniVersion` echoes the input's (SPEC §5
 * "VERSION Success"), or CURRENT_VERSION when the input is not JSON or names none.
 */
export function versionAnswer(stdin: string, versions: readonly string[] = SUPPORTED_VERSIONS): string {
  let cniVersion = CURRENT_VERSION;
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === 'string' && /^\d{1,4}\.\d{1,4}\.\d{1,4}$/.test(v)) cniVersion = v;
  } catch {
    // Not JSON: libcni ignores VERSION's stdin too; answer with our current version.
  }
  return JSON.stringify({ cniVersion, supportedVersions: [...versions] }) + '\n';
}

/**
 * Read stdin until EOF, `limit` bytes or `timeoutMs`, whichever comes first. Runtimes
 * close stdin after writing the config; the timeout only guards a caller that leaves
 * it open (then whatever arrived is used). Uses the event-loop stream, not a threadpool
 * read: a blocked fs.read on fd 0 would stop process.exit() from finishing.
 */
export function readStdinBriefly(timeoutMs: number, limit = VERSION_STDIN_LIMIT, stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.removeListener('data', onData);
      stream.pause();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (d: Buffer | string): void => {
      const buf = typeof d === 'string' ? Buffer.from(d) : d;
      chunks.push(buf);
      total += buf.length;
      if (total >= limit) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    stream.on('data', onData);
    stream.once('end', finish);
    stream.once('error', finish);
  });
}

/** Options for answerVersionIfAsked (all optional; the defaults are the real process). */
export interface FastVersionOptions {
  env?: NodeJS.ProcessEnv;
  versions?: readonly string[];
  /** Longest wait for stdin's EOF (default 200 ms). */
  stdinTimeoutMs?: number;
}

/**
 * If `CNI_COMMAND` is `VERSION`, print the answer and exit the process with 0 (never
 * resolving); otherwise resolve at once without touching stdin. Call it first thing in
 * a `bin/` entry, before any `await import()` of the plugin's heavy module.
 */
export async function answerVersionIfAsked(opts: FastVersionOptions = {}): Promise<void> {
  const env = opts.env ?? process.env;
  if (env.CNI_COMMAND !== 'VERSION') return;
  const stdin = await readStdinBriefly(opts.stdinTimeoutMs ?? 200);
  process.stdout.write(versionAnswer(stdin, opts.versions));
  // Exit now: a read still blocked on an open stdin would otherwise keep us alive.
  // Writes to pipes and files are synchronous on Linux, so nothing is lost.
  process.exit(0);
}
