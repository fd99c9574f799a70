// Small helpers the benchmarks share: percentiles, millisecond figures, pauses.

/** The p-th percentile of `xs` (nearest rank, unsorted input); NaN when there is nothing. */
export const pct = (xs: number[], p: number): number =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN;

export const ms = (x: number): string => `${x.toFixed(1)} ms`;

export const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));
