import { SidecarLimits } from "@potluck/protocol";
import { Hono } from "hono";
import { limitBody } from "../node-request.js";
import { chatRoute } from "./chat.js";
import type { OllamaDeps } from "./deps.js";
import { embedRoutes } from "./embed.js";
import { ollamaErrors } from "./errors.js";
import { generateRoute } from "./generate.js";
import { modelRoutes } from "./models.js";
import { pullRoute } from "./pull.js";
import { versionRoute } from "./version.js";

export type { ModelPuller, OllamaDeps, PullProgress } from "./deps.js";
export { startOllamaPort, type OllamaPort, type OllamaPortOptions } from "./port.js";

/**
 * Ollama's API (/api/*) over Potluck's engine and router, for apps built for Ollama. Mounted on
 * the sidecar's own port and, when POTLUCK_OLLAMA_PORT is set, on a loopback port of its own
 * (port.ts). Its errors are Ollama's `{ "error": "text" }`.
 */
export function ollamaRoutes(deps: OllamaDeps & { version: string }) {
  const app = new Hono()
    .use("/api/*", limitBody(SidecarLimits.bodyBytesMax))
    .route("/", chatRoute(deps))
    .route("/", generateRoute(deps))
    .route("/", embedRoutes(deps))
    .route("/", modelRoutes(deps))
    .route("/", pullRoute(deps))
    .route("/", versionRoute(deps.version));
  return ollamaErrors(app, deps.log);
}
