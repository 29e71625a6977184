import type { Logger } from "@potluck/service";
import type { InferenceEngine } from "../../inference/engine.js";
import type { Router } from "../../routing/router.js";
import type { ModelPuller } from "./pull.js";

/** What the Ollama routes are built from; the sidecar's own app hands in the same engine and router. */
export interface OllamaDeps {
  machine: string;
  engine: InferenceEngine;
  router: Pick<Router, "plan">;
  /** When the sidecar started: the modification time of a model whose file reports none. */
  startedAt: number;
  /** Downloads models for /api/pull; absent, /api/pull says pulling is not available here (501). */
  puller?: ModelPuller;
  log?: Logger;
}
