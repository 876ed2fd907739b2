// Summary statistics for the benchmark's samples. Pure.
//
// Percentiles use linear interpolation between closest ranks (the "R-7" rule:
// what numpy.percentile and most spreadsheets compute): on sorted x of length
// n, p is found at rank h = (n - 1) * p / 100 and interpolated between
// x[floor(h)] and x[ceil(h)]. With 50 samples p95 lies between the 47th and
// 48th smallest (0-based 46.55), not on the largest: one outlier does not
// decide it.

export interface Summary {
  n: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
}

/** The p-th percentile (0..100) of `samples` (any order), by linear interpolation. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be within 0..100, got ${p}`);
  for (const x of samples) if (!Number.isFinite(x)) throw new Error(`sample ${x} is not a finite number`);
  const sorted = [...samples].sort((a, b) => a - b);
  const h = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (h - lo);
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summary of no samples');
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of samples) {
    if (!Number.isFinite(x)) throw new Error(`sample ${x} is not a finite number`);
    sum += x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { n: samples.length, min, max, mean: sum / samples.length, p50: percentile(samples, 50), p95: percentile(samples, 95) };
}

/** Rounds every number of a summary to `digits` decimals (for JSON people read). */
export function roundSummary(s: Summary, digits = 3): Summary {
  const r = (x: number) => round(x, digits);
  return { n: s.n, min: r(s.min), max: r(s.max), mean: r(s.mean), p50: r(s.p50), p95: r(s.p95) };
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** a / b, or null when b is not a positive number (no ratio to speak of). */
export function ratio(a: number, b: number): number | null {
  return b > 0 && Number.isFinite(a) && Number.isFinite(b) ? a / b : null;
}
