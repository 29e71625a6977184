/**
 * The own machine that last served a model gets the next job for it while the fresh probe is in
 * flight (see head-start.ts), for this long after it served; later the probes decide alone. Also
 * keeps a conversation on one machine, whose context still holds the earlier turns.
 */
export const StickyLimits = { forMs: 10 * 60_000, modelsMax: 64 } as const;

/** Per model: the own machine that served it last, and when (bounded, oldest dropped first). */
export class LastServed {
  private readonly byModel = new Map<string, { machine: string; at: number; testModel: boolean }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The machine that served `model` within `StickyLimits.forMs`, if any. */
  recent(model: string): { machine: string; testModel: boolean } | undefined {
    const last = this.byModel.get(model);
    return last !== undefined && this.now() - last.at <= StickyLimits.forMs ? last : undefined;
  }

  /** Notes that an own machine began serving `model`. */
  served(model: string, machine: string, testModel: boolean): void {
    this.byModel.delete(model);
    this.byModel.set(model, { machine, at: this.now(), testModel });
    if (this.byModel.size > StickyLimits.modelsMax) this.byModel.delete(this.byModel.keys().next().value!);
  }

  /** The next prompt for `model` gets no head start towards `machine` (its probe just failed). */
  forget(model: string, machine: string): void {
    if (this.byModel.get(model)?.machine === machine) this.byModel.delete(model);
  }
}
