import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyGguf, TINY_MODEL_NAME } from "./tiny-gguf.js";

/** Bumped whenever tiny-gguf.ts changes the bytes it writes, so cached files are not reused stale. */
const TINY_FORMAT_VERSION = 2;

/** The file name a seed's tiny model is cached under; also the model id it is served as. */
export function tinyModelFileName(seed = 1): string {
  return `${TINY_MODEL_NAME}-s${seed}-v${TINY_FORMAT_VERSION}.gguf`;
}

/**
 * Returns the path of the tiny test model for `seed` inside `dir`, generating it only when absent.
 * The write goes to a unique temporary name first and is renamed into place, so concurrent test
 * workers (or a sidecar and a test) never see a half-written file.
 */
export function ensureTinyModel(dir: string, seed = 1): string {
  const path = join(dir, tinyModelFileName(seed));
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, tinyGguf(seed));
  renameSync(tmp, path);
  return path;
}

/** SHA-256 of the bytes for a seed; lets tests prove determinism without comparing files by hand. */
export function tinyModelDigest(seed = 1): string {
  return createHash("sha256").update(tinyGguf(seed)).digest("hex");
}
