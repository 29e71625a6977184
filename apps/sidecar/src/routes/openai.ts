import { randomUUID } from "node:crypto";
import {
  ChatCompletionRequest,
  EmbeddingsRequest,
  Headers,
  PotluckHttpError,
  SidecarLimits,
  zodHook,
  type InferStreamChunk,
} from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import type { InferenceEngine } from "../inference/engine.js";
import type { PlannedRoute, Router } from "../routing/router.js";
import { asHttpError } from "./http-errors.js";
import { limitBody, onClientGone } from "./node-request.js";
import { coalesceWindowMs, streamResponse } from "./stream-body.js";

export interface OpenAiDeps {
  machine: string;
  engine: InferenceEngine;
  router: Pick<Router, "plan">;
}

/** max_tokens when a client sends none: enough for a reply, small enough for a tiny context. */
export const defaultMaxTokens = 256;

/**
 * The loopback OpenAI-compatible API. Every answer that ran a model names the machine that served
 * it: `served_by` in the body, the X-Potluck-Served-By header, and in the last stream chunk (the
 * footer). Test models say so in `potluck.test_model`.
 */
export function openAiRoutes(deps: OpenAiDeps) {
  return new Hono()
    .use("/v1/*", limitBody(SidecarLimits.bodyBytesMax))
    .get("/v1/models", (c) =>
      c.json({
        object: "list",
        data: deps.engine.list().map((m) => ({
          id: m.id,
          object: "model",
          created: 0,
          owned_by: m.testModel ? `${deps.machine} (TEST MODEL: random weights, gibberish output)` : deps.machine,
          potluck: {
            machine: deps.machine,
            state: m.state,
            progress: m.progress,
            reason: m.reason,
            test_model: m.testModel,
            context_size: m.contextSize,
          },
        })),
      }),
    )
    .post("/v1/chat/completions", validator("json", zodHook(ChatCompletionRequest)), async (c) => {
      const body = c.req.valid("json");
      const route = await deps.router.plan(body.model, body.potluck?.on);
      const abort = new AbortController();
      onClientGone(c, () => abort.abort(new Error("client went away")));
      const job = {
        model: body.model,
        messages: body.messages,
        maxTokens: body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens,
        temperature: body.temperature,
        seed: body.seed,
        topP: body.top_p,
        signal: abort.signal,
        batchWindowMs: coalesceWindowMs,
      };
      const chunks = route.run(job);
      // Pull the first chunk before answering, so "queue full" or "peer refused" is an HTTP status.
      const first = await chunks.next().catch((error: unknown) => {
        throw asHttpError(error);
      });
      if (first.done !== true && first.value.type === "error")
        throw new PotluckHttpError(502, first.value.code, first.value.message);
      const meta = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model };
      c.header(Headers.servedBy, route.choice.machine);
      if (body.stream !== true) return c.json(await collect(prepend(first, chunks), route, meta));
      const encode = sseEncoder(route, meta);
      return streamResponse(c, prepend(first, chunks), {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          [Headers.servedBy]: route.choice.machine,
        },
        encode,
        onCancel: () => abort.abort(new Error("client went away")),
        trailer: "data: [DONE]\n\n",
      });
    })
    .post("/v1/embeddings", validator("json", zodHook(EmbeddingsRequest)), async (c) => {
      const body = c.req.valid("json");
      const ready = deps.engine.list().filter((m) => m.state === "ready");
      // Models load on first use: with none loaded yet, one that is available loads for this request.
      const model = body.model ?? (ready[0] ?? deps.engine.list().find((m) => m.state !== "failed"))?.id;
      if (model === undefined)
        throw new PotluckHttpError(
          503,
          "model_not_ready",
          "no model is ready on this machine to embed with yet; see GET /v1/models",
        );
      if (deps.engine.state(model) === undefined) {
        throw new PotluckHttpError(
          400,
          "model_not_found",
          `model: no model called ${JSON.stringify(model)} here (have ${ready.map((m) => m.id).join(", ") || "none"})`,
          "model",
        );
      }
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const abort = new AbortController();
      onClientGone(c, () => abort.abort(new Error("client went away")));
      const result = await deps.engine.embed(model, inputs, abort.signal).catch((error: unknown) => {
        throw asHttpError(error);
      });
      c.header(Headers.servedBy, deps.machine);
      return c.json({
        object: "list",
        data: result.vectors.map((vector, index) => ({
          object: "embedding",
          index,
          embedding: body.encoding_format === "base64" ? base64Floats(vector) : vector,
        })),
        model,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
        served_by: deps.machine,
        potluck: { served_by: deps.machine, test_model: deps.engine.state(model)?.testModel ?? false },
      });
    });
}

/** OpenAI's base64 embedding encoding: the vector as little-endian float32 bytes. */
function base64Floats(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString("base64");
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

/** Re-joins a pulled first item to the rest; closing it early closes the source (frees the model). */
async function* prepend<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    if (first.done === true) return;
    yield first.value;
    for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.(undefined);
  }
}

/** A non-streaming reply: the whole text, usage, and the footer fields. */
async function collect(chunks: AsyncIterable<InferStreamChunk>, route: PlannedRoute, meta: Meta) {
  let text = "";
  for await (const chunk of chunks) {
    if (chunk.type === "token") text += chunk.text;
    else if (chunk.type === "tool_call" || chunk.type === "loading") continue;
    else if (chunk.type === "error") throw new PotluckHttpError(502, chunk.code, chunk.message);
    else {
      return {
        ...meta,
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: chunk.finishReason }],
        usage: usageOf(chunk),
        served_by: chunk.servedBy,
        potluck: footer(chunk, route),
      };
    }
  }
  throw new PotluckHttpError(502, "stream_incomplete", `${route.choice.machine} ended the reply without a final chunk`);
}

/**
 * Encodes chunks as SSE events. Everything in a token event but its text is the same for the
 * whole reply, so it is serialized once and each token costs one JSON.stringify of a string.
 */
function sseEncoder(route: PlannedRoute, meta: Meta): (chunk: InferStreamChunk) => string | undefined {
  const base = { ...meta, object: "chat.completion.chunk" };
  const tokenHead = `data: ${JSON.stringify(base).slice(0, -1)},"choices":[{"index":0,"delta":{"content":`;
  const tokenTail = `},"finish_reason":null}]}\n\n`;
  return (chunk) => {
    if (chunk.type === "token")
      return chunk.text.length === 0 ? undefined : tokenHead + JSON.stringify(chunk.text) + tokenTail;
    // Load progress as an SSE comment: OpenAI clients skip comments, `potluck ask` shows it.
    if (chunk.type === "loading")
      return `: loading ${JSON.stringify({ model: chunk.model, progress: chunk.progress })}\n\n`;
    if (chunk.type === "tool_call") return undefined;
    if (chunk.type === "error") {
      // OpenAI clients raise an error for a data line carrying `error`; the stream then ends.
      return sse({ error: { code: chunk.code, message: chunk.message, type: "potluck_error", layer: chunk.layer } });
    }
    return sse({
      ...base,
      choices: [{ index: 0, delta: {}, finish_reason: chunk.finishReason }],
      usage: usageOf(chunk),
      served_by: chunk.servedBy,
      potluck: footer(chunk, route),
    });
  };
}

function sse(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

function usageOf(chunk: Extract<InferStreamChunk, { type: "done" }>) {
  return {
    prompt_tokens: chunk.usage.promptTokens,
    completion_tokens: chunk.usage.completionTokens,
    total_tokens: chunk.usage.promptTokens + chunk.usage.completionTokens,
  };
}

/** The footer: who served it, how it was reached, and whether it was the random-weight test model. */
function footer(chunk: Extract<InferStreamChunk, { type: "done" }>, route: PlannedRoute) {
  return {
    served_by: chunk.servedBy,
    route: route.choice.kind,
    owner: route.choice.owner,
    test_model: chunk.testModel,
    finished_at: chunk.at,
  };
}
