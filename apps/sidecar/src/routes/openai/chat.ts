import { randomUUID } from "node:crypto";
import { ChatCompletionRequest, Headers } from "@potluck/protocol";
import { Hono } from "hono";
import { streamResponse } from "../stream-body.js";
import { collectReply } from "./collect.js";
import { openAiBody } from "./errors.js";
import { allChunks, startJob, usageOf } from "./job.js";
import { footer } from "../reply-parts.js";
import { chatEncoder, sseHeaders, sseTrailer } from "./sse.js";
import { fromChatRequest } from "./translate.js";
import type { OpenAiDeps } from "./deps.js";

/**
 * POST /v1/chat/completions. Every answer that ran a model names the machine that served it:
 * `served_by` in the body, the X-Potluck-Served-By header, and in the last stream chunk (the
 * footer). Test models say so in `potluck.test_model`.
 */
export function chatRoute(deps: OpenAiDeps) {
  return new Hono().post("/v1/chat/completions", openAiBody(ChatCompletionRequest), async (c) => {
    const body = c.req.valid("json");
    // Translated before routing: a request that cannot be honoured costs no probe of the mesh.
    const request = fromChatRequest(body);
    const job = await startJob(c, deps.router, body.model, body.potluck?.on, request);
    const { route } = job;
    const meta = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model };
    if (body.stream !== true) {
      c.header(Headers.servedBy, route.choice.machine);
      const { text, calls, done } = await collectReply(allChunks(job), route);
      const message =
        calls.length > 0
          ? {
              role: "assistant",
              content: text.length > 0 ? text : null,
              tool_calls: calls.map((call) => ({
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: call.arguments },
              })),
              refusal: null,
            }
          : { role: "assistant", content: text, refusal: null };
      return c.json({
        ...meta,
        object: "chat.completion",
        choices: [{ index: 0, message, logprobs: null, finish_reason: done.finishReason }],
        usage: usageOf(done),
        served_by: done.servedBy,
        potluck: footer(done, route),
      });
    }
    return streamResponse(c, job.rest, {
      headers: { ...sseHeaders, [Headers.servedBy]: route.choice.machine },
      encode: chatEncoder(route, meta, body.stream_options?.include_usage === true),
      onCancel: () => job.abort.abort(new Error("client went away")),
      trailer: sseTrailer,
      first: job.first,
    });
  });
}
