import { EmbeddingsRequest, Headers, PotluckHttpError } from "@potluck/protocol";
import { Hono } from "hono";
import { asHttpError } from "../http-errors.js";
import { onClientGone } from "../node-request.js";
import { openAiBody } from "./errors.js";
import type { OpenAiDeps } from "./deps.js";

/** POST /v1/embeddings: on this machine's engine (embeddings are not routed). */
export function embeddingsRoute(deps: OpenAiDeps) {
  return new Hono().post("/v1/embeddings", openAiBody(EmbeddingsRequest), async (c) => {
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
        404,
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
