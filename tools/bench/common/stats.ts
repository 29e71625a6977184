/** The median (the mean of the middle two for an even count); NaN for no values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Latency summary of one cell, in milliseconds. */
export interface Summary {
  p50: number;
  p95: number;
  min: number;
  samples: number;
}

export function summarize(samplesMs: readonly number[]): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p95: at(0.95), min: sorted[0] ?? Number.NaN, samples: sorted.length };
}

/** The median of each statistic over repeats: one noisy repeat cannot move the result. */
export function medianOf(summaries: readonly Summary[]): Summary {
  return {
    p50: median(summaries.map((s) => s.p50)),
    p95: median(summaries.map((s) => s.p95)),
    min: Math.min(...summaries.map((s) => s.min)),
    samples: summaries.reduce((n, s) => n + s.samples, 0),
  };
}

export function fmt(ms: number): string {
  return Number.isFinite(ms) ? (ms < 1 ? ms.toFixed(3) : ms.toFixed(2)) : "—";
}

/** Times `samples` calls of `fn` after `warmup` untimed ones. */
export async function timeCalls(
  fn: () => unknown,
  { samples, warmup }: { samples: number; warmup: number },
): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return summarize(times);
}
