import { SidecarLimits } from "@potluck/protocol";
import { Hono } from "hono";
import type { OpenAiDeps } from "./deps.js";
import { limitBody } from "../node-request.js";
import { chatRoute } from "./chat.js";
import { completionsRoute } from "./completions.js";
import { embeddingsRoute } from "./embeddings.js";
import { openAiErrors } from "./errors.js";

export type { OpenAiDeps } from "./deps.js";

/**
 * The loopback OpenAI-compatible API; its errors are in OpenAI's shape (errors.ts). GET /v1/models
 * is the household's list (routes/models-list.ts), mounted before these.
 */
export function openAiRoutes(deps: OpenAiDeps) {
  const app = new Hono()
    .use("/v1/*", limitBody(SidecarLimits.bodyBytesMax))
    .route("/", chatRoute(deps))
    .route("/", completionsRoute(deps))
    .route("/", embeddingsRoute(deps));
  return openAiErrors(app);
}
