import { PotluckHttpError, type ChatMessage, type GenerationOptions, type InferStreamChunk } from "@potluck/protocol";
import type { Context } from "hono";
import type { PlannedRoute, Router } from "../../routing/router.js";
import { asHttpError } from "../http-errors.js";
import { onClientGone } from "../node-request.js";
import { coalesceWindowMs } from "../stream-body.js";
import { modelNotFound } from "./errors.js";
import { ReplyClock } from "./reply.js";
import { prepend } from "../reply-parts.js";
import { chunkHttpError } from "../../routing/chunk-errors.js";

export interface Started {
  route: PlannedRoute;
  /** The reply's first token (or call, or end): loading progress has been waited through. */
  first: IteratorResult<InferStreamChunk>;
  /** The chunks after `first`; closing it early stops the model. */
  rest: AsyncGenerator<InferStreamChunk>;
  clock: ReplyClock;
  abort: AbortController;
}

/**
 * Plans and starts one generation through the same Router as the OpenAI routes, so routing, the
 * footer and metering are identical. The reply is read up to its first token before the HTTP
 * answer starts: a refusal (queue full, peer down, model failed to load) is then a status, not a
 * broken stream. A model loading on demand is waited for, as Ollama waits; Ollama clients have no
 * place for progress.
 */
export async function startGeneration(
  c: Context,
  router: Pick<Router, "plan">,
  job: { model: string; on?: string; messages: ChatMessage[]; options: GenerationOptions; clock: ReplyClock },
): Promise<Started> {
  const route = await router.plan(job.model, job.on).catch((error: unknown) => {
    if (error instanceof PotluckHttpError && error.code === "model_not_found")
      throw modelNotFound(job.model, error.message);
    throw asHttpError(error);
  });
  const abort = new AbortController();
  onClientGone(c, () => abort.abort(new Error("client went away")));
  const chunks = route.run({
    model: job.model,
    messages: job.messages,
    ...job.options,
    signal: abort.signal,
    batchWindowMs: coalesceWindowMs,
  });
  let first: IteratorResult<InferStreamChunk>;
  try {
    do {
      first = await chunks.next();
      if (first.done !== true) job.clock.observe(first.value);
    } while (first.done !== true && first.value.type === "loading");
  } catch (error) {
    throw asHttpError(error);
  }
  if (first.done !== true && first.value.type === "error") {
    const { message, layer } = first.value;
    throw chunkHttpError(first.value, layer === undefined ? message : `${layer}: ${message}`);
  }
  return { route, first, rest: chunks, clock: job.clock, abort };
}

/** Every chunk of a started generation, `first` included (for a reply collected whole). */
export function allChunks(started: Started): AsyncGenerator<InferStreamChunk> {
  return prepend(started.first, started.rest);
}
