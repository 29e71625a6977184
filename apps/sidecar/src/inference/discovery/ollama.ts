import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { statOrUndefined, type WalkBudget } from "./folders.js";

/** One model Ollama has pulled: its name as Ollama users type it and the blob holding the weights. */
export interface OllamaModel {
  id: string;
  /** blobs/sha256-<hex>; absent when the manifest is unusable (then `problem` says why). */
  path: string;
  problem?: string;
}

/** The manifest's layer that holds the GGUF weights (others: template, params, projector, license). */
const modelMediaType = "application/vnd.ollama.image.model";
const defaultRegistry = "registry.ollama.ai";
/** A manifest is a few hundred bytes; anything far larger is not one. */
const manifestBytesMax = 1024 * 1024;

/**
 * Models in Ollama's store (OLLAMA_MODELS, default ~/.ollama/models), read from its manifests
 * `manifests/<registry>/<namespace>/<name>/<tag>`; the blob is served in place, never copied.
 * Named as `ollama list` shows them: `name:tag` for the default registry's `library`, else
 * `namespace/name:tag`, with the registry in front when it is not Ollama's own.
 */
export function ollamaModels(root: string, budget: WalkBudget): OllamaModel[] {
  const manifests = join(root, "manifests");
  const models: OllamaModel[] = [];
  for (const registry of listDir(manifests, budget))
    for (const namespace of listDir(join(manifests, registry), budget))
      for (const name of listDir(join(manifests, registry, namespace), budget))
        for (const tag of listDir(join(manifests, registry, namespace, name), budget)) {
          const id = ollamaName(registry, namespace, name, tag);
          models.push({ id, ...modelBlob(root, join(manifests, registry, namespace, name, tag)) });
        }
  return models;
}

export function ollamaName(registry: string, namespace: string, name: string, tag: string): string {
  if (registry === defaultRegistry) return namespace === "library" ? `${name}:${tag}` : `${namespace}/${name}:${tag}`;
  return `${registry}/${namespace}/${name}:${tag}`;
}

function modelBlob(root: string, manifestPath: string): { path: string; problem?: string } {
  const size = statOrUndefined(manifestPath)?.size ?? 0;
  if (size > manifestBytesMax)
    return { path: manifestPath, problem: `Ollama manifest ${manifestPath} is ${size} bytes; not a manifest` };
  let layers: unknown;
  try {
    layers = (JSON.parse(readFileSync(manifestPath, "utf8")) as { layers?: unknown }).layers;
  } catch (error) {
    return { path: manifestPath, problem: `Ollama manifest ${manifestPath} is not JSON: ${messageOf(error)}` };
  }
  const layer = Array.isArray(layers)
    ? (layers as { mediaType?: unknown; digest?: unknown }[]).find((l) => l?.mediaType === modelMediaType)
    : undefined;
  const digest = typeof layer?.digest === "string" ? /^sha256:([0-9a-f]{64})$/.exec(layer.digest)?.[1] : undefined;
  if (digest === undefined)
    return { path: manifestPath, problem: `Ollama manifest ${manifestPath} names no ${modelMediaType} layer` };
  const blob = join(root, "blobs", `sha256-${digest}`);
  if (statOrUndefined(blob)?.isFile() !== true)
    return { path: blob, problem: `Ollama blob ${blob} is missing (an interrupted pull?); run ollama pull again` };
  return { path: blob };
}

/** Sorted entries of a folder, each taken from the walk budget; unreadable or absent: none. */
function listDir(dir: string, budget: WalkBudget): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.filter((name) => !name.startsWith(".") && budget.take());
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
