/**
 * A path to an own machine counts as confirmed for this long after a fresh probe of it answered
 * or a reply from it ran to its end. Within that time the next job's first token is not held for
 * that job's own probe, which is still sent, once the first token is in (head-start.ts): on a
 * household link the probe's round trip, and its work on the serving machine while the model
 * starts, were the largest part of what a remote first token costs over a bare stream
 * (BENCHMARKS.md, "Inference"). Short, so a path that broke since is found by the next probe
 * rather than trusted for long; `probeAfterMs`: a first token that has not come by then is waited
 * for behind the fresh probe again, so a machine that vanished is found at the probe's pace, not
 * at the stream's 30 s start timeout.
 */
export const PathConfirmLimits = { forMs: 10_000, probeAfterMs: 250, machinesMax: 256 } as const;

/** Per machine, when its path was last confirmed (bounded, oldest dropped first). */
export class ConfirmedPaths {
  private readonly at = new Map<string, number>();

  constructor(
    private readonly forMs: number = PathConfirmLimits.forMs,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A fresh probe of `machine` answered, or a reply from it ran to its end. */
  confirm(machine: string): void {
    if (this.forMs <= 0) return;
    this.at.delete(machine);
    this.at.set(machine, this.now());
    if (this.at.size > PathConfirmLimits.machinesMax) this.at.delete(this.at.keys().next().value!);
  }

  /** Confirmed within `forMs`. */
  fresh(machine: string): boolean {
    const at = this.at.get(machine);
    return at !== undefined && this.now() - at <= this.forMs;
  }

  /** Its probe failed: the next job waits for a fresh one again. */
  forget(machine: string): void {
    this.at.delete(machine);
  }
}
