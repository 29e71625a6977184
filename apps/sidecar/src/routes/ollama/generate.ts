import { OllamaGenerateRequest } from "@potluck/protocol";
import { Hono } from "hono";
import { ollamaBody } from "./errors.js";
import type { OllamaDeps } from "./deps.js";
import { loadOrUnload, respond } from "./respond.js";
import { ReplyClock } from "./reply.js";
import { startGeneration } from "./run.js";
import { generateToGeneration, resolveModelName } from "./translate.js";

/** POST /api/generate: one prompt (and an optional system prompt) as a chat turn, the reply in `response`. */
export function generateRoute(deps: OllamaDeps) {
  return new Hono().post("/api/generate", async (c) => {
    const clock = new ReplyClock();
    const body = await ollamaBody(c, OllamaGenerateRequest);
    const model = resolveModelName(body.model, (id) => deps.engine.state(id) !== undefined);
    const { messages, options } = generateToGeneration(body);
    const on = body.potluck?.on ?? undefined;
    const stream = body.stream !== false;
    if (body.prompt == null || body.prompt.length === 0)
      return loadOrUnload(c, deps, { kind: "generate", model, requested: body.model, on, options }, stream);
    const started = await startGeneration(c, deps.router, { model, on, messages, options, clock });
    return respond(c, started, { kind: "generate", model: body.model, route: started.route, clock }, stream);
  });
}
