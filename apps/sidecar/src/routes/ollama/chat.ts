import { OllamaChatRequest } from "@potluck/protocol";
import { Hono } from "hono";
import { ollamaBody } from "./errors.js";
import type { OllamaDeps } from "./deps.js";
import { loadOrUnload, respond } from "./respond.js";
import { ReplyClock } from "./reply.js";
import { startGeneration } from "./run.js";
import { chatToGeneration, resolveModelName } from "./translate.js";

/** POST /api/chat: messages (with tool calls and tool answers), tools, format, options, keep_alive. */
export function chatRoute(deps: OllamaDeps) {
  return new Hono().post("/api/chat", async (c) => {
    const clock = new ReplyClock();
    const body = await ollamaBody(c, OllamaChatRequest);
    const model = resolveModelName(body.model, (id) => deps.engine.state(id) !== undefined);
    const { messages, options } = chatToGeneration(body);
    const on = body.potluck?.on ?? undefined;
    const stream = body.stream !== false;
    if (messages.length === 0)
      return loadOrUnload(c, deps, { kind: "chat", model, requested: body.model, on, options }, stream);
    const started = await startGeneration(c, deps.router, { model, on, messages, options, clock });
    return respond(c, started, { kind: "chat", model: body.model, route: started.route, clock }, stream);
  });
}
