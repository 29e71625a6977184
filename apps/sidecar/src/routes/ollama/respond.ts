import { Headers, type GenerationOptions } from "@potluck/protocol";
import type { Context } from "hono";
import type { InferenceEngine } from "../../inference/engine.js";
import type { Router } from "../../routing/router.js";
import { streamResponse } from "../stream-body.js";
import { modelNotFound } from "./errors.js";
import { collectReply, ndjsonEncoder, type ReplyContext, type ReplyKind } from "./reply.js";
import { allChunks, type Started } from "./run.js";

const ndjsonHeaders = { "content-type": "application/x-ndjson", "cache-control": "no-cache" };

/** A started generation as Ollama answers it: NDJSON lines (the default) or one object. */
export async function respond(c: Context, started: Started, reply: ReplyContext, stream: boolean): Promise<Response> {
  const machine = started.route.choice.machine;
  if (!stream) {
    c.header(Headers.servedBy, machine);
    return c.json(await collectReply(allChunks(started), reply));
  }
  return streamResponse(c, started.rest, {
    headers: { ...ndjsonHeaders, [Headers.servedBy]: machine },
    encode: ndjsonEncoder(reply),
    onCancel: () => started.abort.abort(new Error("client went away")),
    first: started.first,
  });
}

/**
 * Ollama's load and unload requests: a chat without messages (a generate without a prompt) loads
 * the model, and with keep_alive 0 unloads it. Unloading is this machine's business only; loading
 * names a model some machine of the household has (the router says which, or why none).
 */
export async function loadOrUnload(
  c: Context,
  deps: { engine: InferenceEngine; router: Pick<Router, "plan"> },
  request: { kind: ReplyKind; model: string; requested: string; on?: string; options: GenerationOptions },
  stream: boolean,
): Promise<Response> {
  const local = deps.engine.state(request.model);
  let reason: "load" | "unload" = "load";
  if (request.options.keepAliveMs === 0) {
    if (local === undefined) throw modelNotFound(request.requested, "it is not on this machine, so not loaded here");
    if (local.state === "ready" || local.state === "loading") await deps.engine.unload(request.model);
    reason = "unload";
  } else if (local === undefined) {
    await deps.router.plan(request.model, request.on).catch((error: unknown) => {
      throw (error as { code?: string }).code === "model_not_found"
        ? modelNotFound(request.requested, (error as Error).message)
        : error;
    });
  }
  const output = request.kind === "chat" ? { message: { role: "assistant", content: "" } } : { response: "" };
  const body = {
    model: request.requested,
    created_at: new Date().toISOString(),
    ...output,
    done: true,
    done_reason: reason,
  };
  if (!stream) return c.json(body);
  return c.body(`${JSON.stringify(body)}\n`, 200, ndjsonHeaders);
}
