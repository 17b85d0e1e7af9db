/**
 * Small statistics and formatting helpers for the benchmark report.
 *
 * Glossary:
 * - **summary**: median, min and max of the runs of one figure (n = number of runs).
 * - **paired ratio**: ours ÷ reference computed per run (the two were measured back to
 *   back), then summarised; less sensitive to this machine's slow drifts than a ratio of
 *   medians.
 */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, median: percentile(s, 50), min: s[0]!, max: s[s.length - 1]! };
}

/** Percentile of an ascending array, linear interpolation between closest ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/** ours[i] / ref[i] for every run i measured as a pair. */
export function pairedRatios(ours: readonly number[], ref: readonly number[]): number[] {
  const n = Math.min(ours.length, ref.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(ours[i]! / ref[i]!);
  return out;
}

/** `123.4 (110.2–130.9)` with a fixed number of decimals. */
export function fmtSummary(s: Summary, digits = 1): string {
  if (s.n === 0 || !Number.isFinite(s.median)) return 'n/a';
  if (s.n === 1) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** MB/s (10^6 bytes per second) from bytes and milliseconds. */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export const MiB = 1024 * 1024;

/** Rotate `xs` left by `k` (interleaving order that changes from run to run). */
export function rotate<T>(xs: readonly T[], k: number): T[] {
  const n = xs.length;
  if (n === 0) return [];
  const r = ((k % n) + n) % n;
  return [...xs.slice(r), ...xs.slice(0, r)];
}
