import type { InferStreamChunk } from "@potluck/protocol";
import { EngineError, type InferenceEngine } from "../inference/engine.js";
import type { ChatJob } from "./types.js";

/**
 * Runs a job on this machine's engine as the same chunk stream a peer sends, so callers treat
 * local and remote alike. Failures before the first token are thrown (the caller can still answer
 * with an HTTP status); failures after it become an error chunk.
 */
export async function* runLocal(
  engine: InferenceEngine,
  machine: string,
  testModel: boolean,
  job: ChatJob,
): AsyncGenerator<InferStreamChunk> {
  let started = false;
  // Once load progress went out, a peer's HTTP answer has begun: a failed load is an error chunk.
  let progressSent = false;
  try {
    for await (const event of engine.stream(job.model, job)) {
      // Load progress is not a start: a load that fails can still be an HTTP status.
      if (event.type === "loading") {
        progressSent = true;
        yield { type: "loading", model: job.model, progress: event.progress };
        continue;
      }
      started = true;
      if (event.type === "token") {
        yield { type: "token", text: event.text };
      } else if (event.type === "tool_call") {
        yield event;
      } else {
        yield {
          type: "done",
          servedBy: machine,
          testModel,
          finishReason: event.finishReason,
          usage: event.usage,
          at: new Date().toISOString(),
        };
      }
    }
  } catch (error) {
    if ((!started && !progressSent) || job.signal?.aborted === true) throw error;
    const code = error instanceof EngineError ? error.code : "generation_failed";
    // A 400 from the engine is about the request (its prompt does not fit), said as it is; the
    // rest are the machine's: which step failed where.
    const own = error instanceof EngineError && error.status === 400;
    const what = started ? "generation" : "loading the model";
    const reason = error instanceof Error ? error.message : String(error);
    yield {
      type: "error",
      code,
      message: own ? reason : `${what} on ${machine} failed: ${reason}`,
      layer: "model-runtime",
    };
  }
}
