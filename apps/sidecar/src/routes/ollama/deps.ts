import type { Logger } from "@potluck/service";
import type { InferenceEngine } from "../../inference/engine.js";
import type { Router } from "../../routing/router.js";

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

/** One step of a download, as Ollama's pull progress reports it. */
export interface PullProgress {
  status: string;
  total?: number;
  completed?: number;
}

/**
 * Downloads a model so the engine can serve it (the models work provides one; the sidecar wires
 * it). `ref` is the name the client asked for; the answer is the id clients then name in `model`.
 * Rejects with the reason (an error with a 4xx `status` for a bad reference) when it cannot.
 */
export interface ModelPuller {
  pull(ref: string, onProgress: (progress: PullProgress) => void, signal: AbortSignal): Promise<{ id: string }>;
}
