import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaEngine, type LlamaEngineOptions } from "../src/inference/llama-engine.js";
import { ensureTinyModel, tinyModelFileName } from "@potluck/gguf";

/** Generated test models are cached here across runs; the name carries the format version. */
export const testModelDir = join(tmpdir(), "potluck-test-models");

export function tinyModelPath(seed = 1): string {
  return ensureTinyModel(testModelDir, seed);
}

export function tinyModelId(seed = 1): string {
  return tinyModelFileName(seed).replace(/\.gguf$/, "");
}

/** One thread: the test machine has two cores and other suites run beside this one. */
export const testEngineOptions: LlamaEngineOptions = {
  threads: 1,
  contextSizeMax: 2048,
  queueWaitingMax: 4,
  embedContextSize: 256,
};

export async function readyTinyEngine(
  options: Partial<LlamaEngineOptions> = {},
): Promise<{ engine: LlamaEngine; id: string }> {
  const engine = new LlamaEngine({ ...testEngineOptions, ...options });
  const id = tinyModelId();
  await engine.load({ id, path: tinyModelPath(), testModel: true });
  return { engine, id };
}
