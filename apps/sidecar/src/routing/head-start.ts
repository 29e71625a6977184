import type { InferStreamChunk } from "@potluck/protocol";
import type { ChatJob, PlannedRoute, RouteChoice } from "./types.js";

/**
 * A route whose likely server gets the job while the fresh probe is still in flight.
 *
 * Routing waits for a fresh data-plane probe before it trusts a path (DESIGN: "fresh probe before
 * routing"). Waiting for it before even sending the job puts a whole mesh round trip in front of
 * every remote first token, about the whole round trip over a slow link (BENCHMARKS.md,
 * "Inference", `tools/bench/inference --compare-head-start`).
 * So for the own machine that served this model last (or the one the caller pinned), the job goes
 * out just before the probes (that machine reads it first, and its model starts while it answers
 * the probe), and nothing from it reaches the caller until the probe has confirmed that machine:
 * `decide` probes, waits for every answer and builds the route exactly as without a head start,
 * taking `adopt` as that machine's start. If the probe does not confirm it (unreachable, MTU
 * black hole, model gone), the early job is cancelled before any other candidate is tried, and
 * the route is the probe's own choice.
 *
 * Only own machines get a head start: on a trusted peer the job would be billed work started
 * before the route was decided.
 */
export function headStartRoute(o: {
  /** The machine expected to serve, as the choice to report until the route is decided. */
  guess: RouteChoice;
  /** Starts the job on `guess` (a remote candidate's start). */
  start: (job: ChatJob) => AsyncGenerator<InferStreamChunk>;
  /**
   * Probes, waits for every answer and returns the route; uses `adopt` for `guess` if its probe
   * confirmed it, and calls `ruledOut` as soon as it knows the probe did not.
   */
  decide: (adopt: (job: ChatJob) => AsyncGenerator<InferStreamChunk>, ruledOut: () => void) => Promise<PlannedRoute>;
  /**
   * The path to `guess` was confirmed moments ago (confirmed.ts): its first chunk goes out as soon
   * as it arrives, and `probe` (this job's fresh probe: true if it confirmed the machine) is sent
   * once the caller has taken it, off the first token's path; if it did not, `ruledOut` runs once
   * this reply is over (after the reply marked its machine as the one that served, so the next
   * prompt gets no head start). A failure before that chunk, or no chunk within `waitMs`, and the
   * fresh probe decides as above.
   */
  confirmed?: { waitMs: number; probe: () => Promise<boolean>; ruledOut: () => void };
}): PlannedRoute {
  let decided: PlannedRoute | undefined;
  return {
    get choice() {
      return decided?.choice ?? o.guess;
    },
    run: async function* (job) {
      const cancel = new AbortController();
      const signal = job.signal === undefined ? cancel.signal : AbortSignal.any([job.signal, cancel.signal]);
      const early = o.start({ ...job, signal });
      // Sent now; read only once the probe has confirmed the machine.
      const first = early.next();
      first.catch(() => undefined);
      const confirmed = o.confirmed;
      if (confirmed !== undefined && usable(await within(first, confirmed.waitMs))) {
        let probed: Promise<boolean> | undefined;
        try {
          for await (const chunk of resumed(first, early)) {
            yield chunk;
            // Sent once the caller has taken the first token: nothing of it runs before that write.
            probed ??= confirmed.probe();
          }
        } finally {
          void probed?.then((ok) => ok || confirmed.ruledOut());
        }
        return;
      }
      let adopted = false;
      const adopt = () => {
        adopted = true;
        return resumed(first, early);
      };
      // Stopped the moment its probe fails: the other probes, and diagnosing the failure, can take
      // seconds, while the machine would go on generating for nobody.
      const ruledOut = () => void dropEarly(cancel, first, early, "its fresh probe failed");
      try {
        decided = await o.decide(adopt, ruledOut);
      } catch (error) {
        await dropEarly(cancel, first, early, "no machine can serve this job");
        throw error;
      }
      // A confirmed guess leads the decided route (own machines first, and the guess first of
      // them); anything else means the probe ruled it out, so its job stops before others start.
      if (decided.choice.machine !== o.guess.machine)
        await dropEarly(cancel, first, early, "the fresh probe chose another machine");
      try {
        yield* decided.run(job);
      } finally {
        if (!adopted) await dropEarly(cancel, first, early, "the route did not use it");
      }
    },
  };
}

/** The first chunk if it comes within `ms` (undefined if not, or if it failed). */
async function within<T>(first: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([first.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A chunk that shows the path works: anything but an error (or an empty stream). */
function usable(head: IteratorResult<InferStreamChunk> | undefined): boolean {
  return head !== undefined && head.done !== true && head.value.type !== "error";
}

/** The already-requested first chunk, then the rest; closing early closes the stream. */
async function* resumed(
  first: Promise<IteratorResult<InferStreamChunk>>,
  rest: AsyncGenerator<InferStreamChunk>,
): AsyncGenerator<InferStreamChunk> {
  try {
    const head = await first;
    if (head.done === true) return;
    yield head.value;
    yield* rest;
  } finally {
    await rest.return(undefined);
  }
}

/** Cancels the early job (the peer stops generating when its connection closes) and waits for it to let go. */
async function dropEarly(
  cancel: AbortController,
  first: Promise<unknown>,
  early: AsyncGenerator<InferStreamChunk>,
  why: string,
): Promise<void> {
  if (cancel.signal.aborted) return;
  cancel.abort(new Error(`early start dropped: ${why}`));
  await first.catch(() => undefined);
  await early.return(undefined).catch(() => undefined);
}
