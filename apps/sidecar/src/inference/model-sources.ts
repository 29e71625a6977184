import { readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { ModelSource } from "./engine.js";
import { TINY_MODEL_MARKER_KEY, ensureTinyModel, tinyModelFileName } from "@potluck/gguf";

/** Models one sidecar loads; more is a configuration mistake (each takes memory and a context). */
export const modelsMax = 16;

/**
 * Resolves POTLUCK_MODELS ("a.gguf,/models/dir") to model sources: files as given, directories to
 * their *.gguf files. Empty: the generated tiny TEST model in DATA_DIR/models. Throws naming the
 * variable for a missing path, a duplicate id or too many models.
 */
export function resolveModelSources(spec: string, dataDir: string, tinySeed: number): ModelSource[] {
  const entries = spec
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  if (entries.length === 0) {
    const path = ensureTinyModel(join(dataDir, "models"), tinySeed);
    return [{ id: idOf(tinyModelFileName(tinySeed)), path, testModel: true }];
  }
  const files: string[] = [];
  for (const entry of entries) {
    const path = resolve(entry);
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      throw new Error(`POTLUCK_MODELS: ${path} does not exist`);
    }
    if (!isDir) files.push(path);
    else
      files.push(
        ...readdirSync(path)
          .filter((f) => f.endsWith(".gguf"))
          .sort()
          .map((f) => join(path, f)),
      );
  }
  if (files.length > modelsMax)
    throw new Error(`POTLUCK_MODELS: ${files.length} model files; at most ${modelsMax} are loaded by one sidecar`);
  const sources = files.map((path) => ({
    id: idOf(basename(path)),
    path,
    testModel: basename(path).startsWith("potluck-tiny-test-model"),
  }));
  const seen = new Set<string>();
  for (const source of sources) {
    if (seen.has(source.id)) throw new Error(`POTLUCK_MODELS: two files are both model ${source.id}; rename one`);
    seen.add(source.id);
  }
  return sources;
}

function idOf(fileName: string): string {
  return fileName.replace(/\.gguf$/i, "");
}

/** True when GGUF metadata carries the tiny model's marker (used to label files renamed by users). */
export function isTinyModelMetadata(metadata: Record<string, unknown>): boolean {
  const [prefix, key] = TINY_MODEL_MARKER_KEY.split(".");
  const section = metadata[prefix ?? ""];
  return typeof section === "object" && section !== null && (section as Record<string, unknown>)[key ?? ""] === true;
}
