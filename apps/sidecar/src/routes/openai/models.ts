import { Hono } from "hono";
import type { OpenAiDeps } from "./index.js";

/** GET /v1/models: this machine's models, with Potluck's state of each beside OpenAI's fields. */
export function modelsRoute(deps: OpenAiDeps) {
  return new Hono().get("/v1/models", (c) =>
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
  );
}
