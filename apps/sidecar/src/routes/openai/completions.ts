import { randomUUID } from "node:crypto";
import { CompletionRequest, Headers } from "@potluck/protocol";
import { Hono } from "hono";
import { streamResponse } from "../stream-body.js";
import { collectReply } from "./collect.js";
import { openAiBody } from "./errors.js";
import { allChunks, startJob, usageOf } from "./job.js";
import { footer } from "../reply-parts.js";
import { completionEncoder, sseHeaders, sseTrailer } from "./sse.js";
import { fromCompletionRequest } from "./translate.js";
import type { OpenAiDeps } from "./deps.js";

/** POST /v1/completions, OpenAI's legacy text completion: routed and footed like chat. */
export function completionsRoute(deps: OpenAiDeps) {
  return new Hono().post("/v1/completions", openAiBody(CompletionRequest), async (c) => {
    const body = c.req.valid("json");
    const request = fromCompletionRequest(body);
    const job = await startJob(c, deps.router, body.model, body.potluck?.on, request);
    const { route } = job;
    const meta = { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model };
    if (body.stream !== true) {
      c.header(Headers.servedBy, route.choice.machine);
      const { text, done } = await collectReply(allChunks(job), route);
      return c.json({
        ...meta,
        object: "text_completion",
        choices: [{ index: 0, text, logprobs: null, finish_reason: done.finishReason }],
        usage: usageOf(done),
        served_by: done.servedBy,
        potluck: footer(done, route),
      });
    }
    return streamResponse(c, job.rest, {
      headers: { ...sseHeaders, [Headers.servedBy]: route.choice.machine },
      encode: completionEncoder(route, meta, body.stream_options?.include_usage === true),
      onCancel: () => job.abort.abort(new Error("client went away")),
      trailer: sseTrailer,
      first: job.first,
    });
  });
}
