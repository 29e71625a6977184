import { performance } from "node:perf_hooks";
import { Headers, OllamaEmbeddingsRequest, OllamaEmbedRequest, PotluckHttpError } from "@potluck/protocol";
import { Hono, type Context } from "hono";
import { asHttpError } from "../http-errors.js";
import { onClientGone } from "../node-request.js";
import type { OllamaDeps } from "./deps.js";
import { modelNotFound, ollamaBody } from "./errors.js";
import { resolveModelName } from "./translate.js";

/**
 * POST /api/embed (vectors L2-normalized, as Ollama returns them; `dimensions` keeps the first N
 * and normalizes again) and the older POST /api/embeddings (one raw vector). Embeddings run on
 * this machine, as on /v1/embeddings: a vector from another machine's model would not be
 * comparable with the ones a client already stored.
 */
export function embedRoutes(deps: OllamaDeps) {
  return new Hono()
    .post("/api/embed", async (c) => {
      const startMs = performance.now();
      const body = await ollamaBody(c, OllamaEmbedRequest);
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const { model, result } = await embedHere(c, deps, body.model, inputs);
      const dimensions = body.dimensions ?? undefined;
      const width = result.vectors[0]?.length ?? 0;
      if (dimensions !== undefined && dimensions > width)
        throw new PotluckHttpError(
          400,
          "invalid_request",
          `dimensions: at most ${width}, the width of ${model}'s embeddings`,
          "dimensions",
        );
      return c.json({
        model: body.model,
        embeddings: result.vectors.map((v) => normalized(dimensions === undefined ? v : v.slice(0, dimensions))),
        total_duration: Math.round((performance.now() - startMs) * 1e6),
        load_duration: 0,
        prompt_eval_count: result.promptTokens,
        served_by: deps.machine,
        potluck: { served_by: deps.machine, test_model: deps.engine.state(model)?.testModel ?? false },
      });
    })
    .post("/api/embeddings", async (c) => {
      const body = await ollamaBody(c, OllamaEmbeddingsRequest);
      const { result } = await embedHere(c, deps, body.model, [body.prompt]);
      return c.json({ embedding: result.vectors[0] ?? [] });
    });
}

async function embedHere(c: Context, deps: OllamaDeps, requested: string, inputs: readonly string[]) {
  const model = resolveModelName(requested, (id) => deps.engine.state(id) !== undefined);
  if (deps.engine.state(model) === undefined) {
    const here = deps.engine.list().map((m) => m.id);
    throw modelNotFound(requested, `embeddings run on this machine, which has ${here.join(", ") || "no model"}`);
  }
  const abort = new AbortController();
  onClientGone(c, () => abort.abort(new Error("client went away")));
  const result = await deps.engine.embed(model, inputs, abort.signal).catch((error: unknown) => {
    throw asHttpError(error);
  });
  c.header(Headers.servedBy, deps.machine);
  return { model, result };
}

/** Unit length, so a dot product is the cosine; an all-zero vector stays as it is. */
function normalized(vector: readonly number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  return norm === 0 ? [...vector] : vector.map((x) => x / norm);
}
