import { join } from "node:path";
import type { ModelSource } from "./engine.js";
import { ensureTinyModel, tinyModelFileName } from "@potluck/gguf";
import { discoverModels, type DiscoverOptions } from "./discovery/index.js";

export { isTinyModelMetadata } from "./discovery/index.js";

export interface ResolveOptions extends DiscoverOptions {
  /** Where the generated tiny TEST model is written when nothing else can chat. */
  dataDir: string;
  tinySeed: number;
}

/**
 * The models this sidecar serves: POTLUCK_MODELS when set (exactly those: a folder with none in it
 * is a machine with no model, served by the household), else what discovery finds in the stores
 * (discovery/index.ts). With POTLUCK_MODELS unset and no usable chat model found, the generated
 * tiny TEST model joins the list, so a fresh machine still answers. Throws naming POTLUCK_MODELS
 * for a path that does not exist.
 */
export async function resolveModelSources(options: ResolveOptions): Promise<ModelSource[]> {
  const found = await discoverModels(options);
  if (options.configured.trim().length > 0) return found;
  if (found.some((m) => m.kind !== "embedding" && m.problem === undefined)) return found;
  const path = ensureTinyModel(join(options.dataDir, "models"), options.tinySeed);
  const id = tinyModelFileName(options.tinySeed).replace(/\.gguf$/i, "");
  return [...found, { id, path, testModel: true, source: "test", kind: "chat" }];
}
