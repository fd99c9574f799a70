// The fuzz loop shared by every target: case count and seed from the environment, one
// independent PRNG per case (so any case replays alone), outcome tallies, and failures that
// print the seed, the case number, the input and the command that reproduces it.
import type { ExecutionContext } from 'ava';
import { caseSeed, Rng } from './gen.js';

/** Default run seed: fixed so CI is deterministic; set TSO_FUZZ_SEED to explore others. */
export const DEFAULT_SEED = 20250611;

export interface FuzzSettings {
  /** Cases to run (ignored when `only` is set). */
  cases: number;
  seed: number;
  /** TSO_FUZZ_CASE: replay this case alone. */
  only?: number;
  /** TSO_FUZZ_MAX_FAILURES: failing cases reported before a target stops (default 3). */
  maxFailures?: number;
}

/**
 * Settings for one target. `TSO_FUZZ_CASES` sets the count for every target (the full run is
 * 100000); `cap` bounds it for targets that spawn a process per case. `TSO_FUZZ_SEED` and
 * `TSO_FUZZ_CASE` (one case) reproduce a failure.
 */
export function settings(defaultCases: number, cap = Infinity, env: NodeJS.ProcessEnv = process.env): FuzzSettings {
  const n = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  const cases = Math.min(n(env.TSO_FUZZ_CASES) ?? defaultCases, cap);
  const only = n(env.TSO_FUZZ_CASE);
  const maxFailures = n(env.TSO_FUZZ_MAX_FAILURES);
  return { cases, seed: n(env.TSO_FUZZ_SEED) ?? DEFAULT_SEED, ...(only !== undefined ? { only } : {}), ...(maxFailures ? { maxFailures } : {}) };
}

/** What a target supplies: make an input from a PRNG, check what the system does with it. */
export interface Target<I> {
  /** Shown in failures and the summary, e.g. "cni". */
  name: string;
  /** The test file, for the reproduce line. */
  file: string;
  generate(rng: Rng, i: number): I;
  /** Throw (any Error) on a violated property; return an outcome label for the tally. */
  check(input: I, i: number): Promise<string> | string;
  /** Printable form of an input (default: JSON with long strings cut). */
  describe?(input: I): string;
}

export interface FuzzReport {
  cases: number;
  failures: number;
  ms: number;
  outcomes: Record<string, number>;
}

/** JSON with strings over 1000 characters cut (their length kept), for failure messages. */
export function show(v: unknown, limit = 4000): string {
  let text: string;
  try {
    text = JSON.stringify(v, (_k, x) => (typeof x === 'string' && x.length > 1000 ? `${x.slice(0, 800)}…(${x.length} chars)` : x)) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

/** Run a target's cases; each failure is a t.fail naming seed, case, input and how to replay. */
export async function fuzz<I>(t: ExecutionContext, s: FuzzSettings, target: Target<I>): Promise<FuzzReport> {
  const outcomes: Record<string, number> = {};
  const maxFailures = s.maxFailures ?? 3;
  const failed: string[] = [];
  let ran = 0;
  const started = performance.now();
  const indexes = s.only !== undefined ? [s.only] : Array.from({ length: s.cases }, (_, i) => i);
  for (const i of indexes) {
    const input = target.generate(new Rng(caseSeed(s.seed, i)), i);
    ran++;
    try {
      const label = await target.check(input, i);
      outcomes[label] = (outcomes[label] ?? 0) + 1;
    } catch (err) {
      const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failed.push(
        `[fuzz ${target.name}] seed ${s.seed} case ${i}: ${what}\n` +
          `  input: ${(target.describe ?? show)(input)}\n` +
          `  replay: TSO_FUZZ_SEED=${s.seed} TSO_FUZZ_CASE=${i} node test/run.mjs ${target.file}`,
      );
      if (failed.length >= maxFailures) break;
    }
  }
  const ms = performance.now() - started;
  t.log(`[fuzz ${target.name}] ${ran} cases, seed ${s.seed}, ${(ms / 1000).toFixed(1)} s, ${failed.length} failing; outcomes ${JSON.stringify(sorted(outcomes))}`);
  if (failed.length > 0) t.fail(`${failed.length} failing case(s)${failed.length >= maxFailures ? ' (stopped there)' : ''}:\n\n${failed.join('\n\n')}`);
  else t.pass();
  return { cases: ran, failures: failed.length, ms, outcomes };
}

function sorted(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1]));
}

/** Throw a property violation (for target.check). */
export function violated(why: string): never {
  throw new Error(why);
}
