import type { InferenceEngine } from "../../inference/engine.js";
import type { Router } from "../../routing/router.js";

/** What the OpenAI routes need from the sidecar: this machine's name, its engine and the router. */
export interface OpenAiDeps {
  machine: string;
  engine: InferenceEngine;
  router: Pick<Router, "plan">;
}
