import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyGguf, type TestModelShape } from "@potluck/gguf";
import { SmallTestShape, toolsModelCacheDir } from "../../src/model/tiny.js";

/**
 * A random-weight TEST model sized so one CPU thread here makes tens of tokens a second, the rate
 * a real 7–8B model (Q4, ~4 GB) runs at on an ordinary household machine. Decoding is bound by
 * reading every weight once per token: ~100 M F32 weights (~410 MB) against the small shape's
 * ~25 M (~100 MB, ~140 tok/s here), so about a quarter of its rate. Only the rate is real: the
 * output is gibberish and every surface labels it a test model.
 */
export const RateTestShape: TestModelShape = {
  ...SmallTestShape,
  embeddingLength: 1024,
  blockCount: 8,
  feedForwardLength: 2816,
  headCount: 16,
  headCountKv: 16,
};

/** The rate-shaped model for `seed`, generated once into the tools' model cache (~410 MB). */
export function cachedRateTestModel(seed = 1, dir = toolsModelCacheDir): string {
  const path = join(dir, `potluck-rate-test-model-s${seed}-v1.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, tinyGguf(seed, RateTestShape));
  renameSync(tmp, path);
  return path;
}
