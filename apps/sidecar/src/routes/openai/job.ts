import { PotluckHttpError, type InferStreamChunk } from "@potluck/protocol";
import type { Context } from "hono";
import type { PlannedRoute, Router } from "../../routing/router.js";
import { asHttpError } from "../http-errors.js";
import { onClientGone } from "../node-request.js";
import { coalesceWindowMs } from "../stream-body.js";
import type { Translated } from "./translate.js";
import { prepend } from "../reply-parts.js";
import { chunkHttpError } from "../../routing/chunk-errors.js";

export interface StartedJob {
  route: PlannedRoute;
  /** The chunk pulled before answering (a stream writes it with its headers, no await between). */
  first: IteratorResult<InferStreamChunk>;
  /** The chunks after `first`; closing it early stops the model. */
  rest: AsyncGenerator<InferStreamChunk>;
  abort: AbortController;
}

/**
 * Routes a translated request and pulls its first chunk before the route answers, so "queue
 * full", "peer refused" or a schema the runtime cannot enforce is an HTTP status, not a broken
 * stream. Chat and legacy completions share this; only their encodings differ.
 */
export async function startJob(
  c: Context,
  router: Pick<Router, "plan">,
  model: string,
  on: string | undefined,
  request: Translated,
): Promise<StartedJob> {
  const route = await router.plan(model, on);
  const abort = new AbortController();
  onClientGone(c, () => abort.abort(new Error("client went away")));
  const rest = route.run({
    model,
    messages: request.messages,
    ...request.options,
    signal: abort.signal,
    batchWindowMs: coalesceWindowMs,
  });
  const first = await rest.next().catch((error: unknown) => {
    throw asHttpError(error);
  });
  if (first.done !== true && first.value.type === "error") throw chunkHttpError(first.value);
  return { route, first, rest, abort };
}

/** Every chunk of a started job, `first` included (for a reply collected whole). */
export function allChunks(job: StartedJob): AsyncGenerator<InferStreamChunk> {
  return prepend(job.first, job.rest);
}

export function usageOf(chunk: Extract<InferStreamChunk, { type: "done" }>) {
  return {
    prompt_tokens: chunk.usage.promptTokens,
    completion_tokens: chunk.usage.completionTokens,
    total_tokens: chunk.usage.promptTokens + chunk.usage.completionTokens,
  };
}

/** An error chunk as OpenAI clients raise it from a stream: a data line carrying `error`. */
export function streamError(chunk: Extract<InferStreamChunk, { type: "error" }>) {
  return { error: { message: chunk.message, type: "server_error", param: null, code: chunk.code, layer: chunk.layer } };
}
