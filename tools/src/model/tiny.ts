import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ensureTinyModel, tinyGguf, TinyModelShape, type TestModelShape } from "@potluck/gguf";

/**
 * The tiny TEST model (random weights, gibberish output) for tests, benches and the lab. The
 * generator lives in @potluck/gguf, which the sidecar also uses when no model is configured.
 */
export { tinyGguf, tinyModelDigest, TINY_MODEL_NAME } from "@potluck/gguf";

/** Where tools cache generated test models between runs. */
export const toolsModelCacheDir = join(tmpdir(), "potluck-test-models");

/** A cached tiny model for `seed`, generated on first use. */
export function cachedTinyModel(seed = 1, dir = toolsModelCacheDir): string {
  return ensureTinyModel(dir, seed);
}

/** Writes the tiny model for `seed` to `out` (atomically) and returns its size in bytes. */
export function writeTinyModel(out: string, seed = 1): number {
  const bytes = tinyGguf(seed);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, out);
  return bytes.length;
}

/**
 * A larger random-weight TEST model (~100 MB F32) whose per-token compute is closer to a small real
 * model's, so benches can show transport overhead against realistic token times. Cached like the
 * tiny one; still gibberish, still labelled a test model by its metadata.
 */
export const SmallTestShape: TestModelShape = {
  ...TinyModelShape,
  embeddingLength: 512,
  blockCount: 8,
  feedForwardLength: 1536,
  headCount: 8,
  headCountKv: 8,
  contextLength: 4096,
};

export function cachedSmallTestModel(seed = 1, dir = toolsModelCacheDir): string {
  const path = join(dir, `potluck-small-test-model-s${seed}-v1.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, tinyGguf(seed, SmallTestShape));
  renameSync(tmp, path);
  return path;
}
