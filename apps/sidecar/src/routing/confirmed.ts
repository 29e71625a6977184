/**
 * An experiment, off by default. With `POTLUCK_PATH_CONFIRMED_MS` > 0, a path to an own machine
 * counts as confirmed for that long after a fresh probe of it answered or a reply from it ran to
 * its end, and within that time a head-started job's first token is not held for that job's own
 * fresh probe, which is still sent, once the caller has taken the token (head-start.ts). The hope
 * was a shorter remote first token; measured (BENCHMARKS.md, "Inference", session 7), it saved
 * 2–5 ms in some runs and nothing in others, since the head start already sends the job beside
 * its probe and both take one round trip. Not conclusive, so `defaultForMs` is 0: every
 * head-started first token waits for its probe, as DESIGN.md's "fresh probe before routing" has it. `onMs`: the window
 * the bench compares. `probeAfterMs`: a first token that has not come by then is waited for
 * behind the fresh probe again, so a machine that vanished is found at the probe's pace, not at
 * the stream's 30 s start timeout.
 */
export const PathConfirmLimits = { defaultForMs: 0, onMs: 10_000, probeAfterMs: 250, machinesMax: 256 } as const;

/** Per machine, when its path was last confirmed (bounded, oldest dropped first). */
export class ConfirmedPaths {
  private readonly at = new Map<string, number>();

  constructor(
    private readonly forMs: number = PathConfirmLimits.defaultForMs,
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
