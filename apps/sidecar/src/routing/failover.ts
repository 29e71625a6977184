import { LayerCode, type InferStreamChunk } from "@potluck/protocol";
import { EngineError } from "../inference/engine.js";
import { PeerCallError } from "@potluck/peer";
import type { Candidate, CandidateReport, PlannedRoute } from "./types.js";
import { chunkHttpError, isRequestError } from "./chunk-errors.js";

/**
 * Candidates one request may try before giving up. Each failed try costs at most a connect
 * timeout or a refusal, so three keeps a dead household from stalling a prompt for long while
 * still riding out one or two machines that went away since the probe.
 */
export const attemptsMax = 3;

/**
 * Runs a job on the first candidate that produces a first chunk, trying the next one (bounded by
 * `attemptsMax`) when a candidate fails before that: it refused, was unreachable, its queue was
 * full, or its stream broke before any token. Once a chunk has gone to the client there is no
 * retry — a second machine would restart the reply — so a later failure ends the stream with its
 * error chunk. When every try fails, the error lists every candidate with the layer that failed.
 * `more` is asked once, only after the known candidates are used up (the local fast path never
 * probes peers unless it fails).
 */
export function failoverRoute(options: {
  candidates: readonly Candidate[];
  more?: () => Promise<{ candidates: Candidate[]; reports: CandidateReport[] }>;
  /** Lines for candidates that were never usable (failed the probe, no such model, …). */
  reports: readonly CandidateReport[];
  exhausted: (reports: CandidateReport[], onlyError: unknown) => Error;
}): PlannedRoute {
  let current = options.candidates[0]!.choice;
  return {
    get choice() {
      return current;
    },
    run: async function* (job) {
      const pending = [...options.candidates];
      const unusable = [...options.reports];
      const tried: CandidateReport[] = [];
      let more = options.more;
      let lastError: unknown;
      let progressSent = false;
      while (tried.length < attemptsMax) {
        if (pending.length === 0 && more !== undefined) {
          const found = await more();
          more = undefined;
          pending.push(...found.candidates);
          unusable.push(...found.reports);
        }
        const candidate = pending.shift();
        if (candidate === undefined) break;
        current = candidate.choice;
        const chunks = candidate.start(job);
        let first: IteratorResult<InferStreamChunk>;
        // The client stopped reading while load progress went out: the candidate's stream is closed.
        let stoppedDuringLoad = true;
        try {
          // Load progress is passed on but is not a first chunk: a load that then fails still fails over.
          first = await chunks.next();
          while (first.done !== true && first.value.type === "loading") {
            progressSent = true;
            yield first.value;
            first = await chunks.next();
          }
          stoppedDuringLoad = false;
        } catch (error) {
          stoppedDuringLoad = false;
          if (job.signal?.aborted === true) throw error;
          lastError = error;
          tried.push(failedReport(candidate, layerOf(error), error instanceof Error ? error.message : String(error)));
          continue;
        } finally {
          if (stoppedDuringLoad) await chunks.return(undefined);
        }
        if (first.done !== true && first.value.type === "error") {
          await chunks.return(undefined);
          if (job.signal?.aborted === true) return;
          // The request's own fault (its prompt does not fit, an option the runtime refuses):
          // the client's 400 as it is, not a routing failure over every machine.
          if (isRequestError(first.value.code)) {
            if (!progressSent) throw chunkHttpError(first.value);
            yield first.value;
            return;
          }
          lastError = undefined;
          tried.push(
            failedReport(candidate, asLayer(first.value.layer), `${first.value.code}: ${first.value.message}`),
          );
          continue;
        }
        yield* rejoin(first, chunks);
        return;
      }
      const untried = pending.map((c): CandidateReport => ({
        ...c.report,
        reason: {
          kind: "not_tried",
          text: `${c.report.reason.text}; not tried (at most ${attemptsMax} attempts per request)`,
        },
      }));
      const all = [...unusable, ...tried, ...untried];
      // A single candidate that failed on its own keeps its specific error (e.g. 503 queue_full).
      const error = options.exhausted(all, all.length === 1 && tried.length === 1 ? lastError : undefined);
      // Load progress already went out (the HTTP answer has begun): the failure is the stream's last chunk.
      if (!progressSent) throw error;
      const code = (error as { code?: unknown }).code;
      yield { type: "error", code: typeof code === "string" ? code : "no_route", message: error.message };
    },
  };
}

function failedReport(candidate: Candidate, layer: LayerCode, reason: string): CandidateReport {
  return {
    machine: candidate.report.machine,
    relation: candidate.report.relation,
    layer,
    reason: { kind: "failed_before_first_token", text: `failed before the first token: ${reason}` },
  };
}

function layerOf(error: unknown): LayerCode {
  if (error instanceof PeerCallError) return error.layer;
  if (error instanceof EngineError) return "model-runtime";
  return "first-token";
}

function asLayer(layer: string | undefined): LayerCode {
  const parsed = LayerCode.safeParse(layer);
  return parsed.success ? parsed.data : "first-token";
}

/** The first chunk, then the rest; closing early closes the candidate's stream (frees its model). */
async function* rejoin(
  first: IteratorResult<InferStreamChunk>,
  rest: AsyncGenerator<InferStreamChunk>,
): AsyncGenerator<InferStreamChunk> {
  try {
    if (first.done === true) return;
    yield first.value;
    yield* rest;
  } finally {
    await rest.return(undefined);
  }
}
