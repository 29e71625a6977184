import { join, resolve } from "node:path";
import type { ModelInfo } from "@potluck/protocol";
import type { ModelSource } from "../engine.js";
import { classify, groupFiles, type Candidate, type Classified, type Source } from "./classify.js";
import { findGgufFiles, statOrUndefined, WalkBudget, type WalkLimits } from "./folders.js";
import { huggingFaceFiles, type HuggingFaceEnv } from "./huggingface.js";
import { lmStudioFiles } from "./lmstudio.js";
import { ollamaModels } from "./ollama.js";

export { isTinyModelMetadata } from "./classify.js";

/**
 * What one discovery may cost, stated and enforced before the work: folder depth and entries
 * looked at (the walk stops there), and models listed (headers beyond it are never read).
 */
export const DiscoveryLimits = { depthMax: 8, entriesMax: 20_000, modelsMax: 256 } as const;

export interface DiscoverOptions {
  /** POTLUCK_MODELS: comma-separated files and folders; when set, the only place models come from. */
  configured: string;
  /** POTLUCK_DISCOVER: search the stores users already have (Ollama, LM Studio, Hugging Face). */
  discover?: boolean;
  /** Where the stores are: OLLAMA_MODELS, HF_HOME, HF_HUB_CACHE (process.env in the sidecar). */
  env: HuggingFaceEnv & { OLLAMA_MODELS?: string | undefined };
  /** The user's home folder, under which the stores live by default. */
  home: string;
  limits?: Partial<WalkLimits & { modelsMax: number }>;
  /** Told what was left out (a limit reached). */
  warn?: (message: string) => void;
}

/** Stores in the order a name clash is settled: the earlier keeps the plain name. */
const precedence: readonly Source[] = ["configured", "potluck", "ollama", "lmstudio", "huggingface", "test"];

/**
 * Every model this machine has: POTLUCK_MODELS when set (files as given, folders searched
 * recursively), else the stores. Nothing is copied or loaded; each header is read once (no
 * weights) so every model comes with its kind, size and family, or the reason it cannot be
 * served. Ids are stable: the same files give the same ids in the same order. A missing
 * POTLUCK_MODELS path throws (a configuration mistake); nothing found in a store does not.
 */
export async function discoverModels(options: DiscoverOptions): Promise<ModelSource[]> {
  const limits = { ...DiscoveryLimits, ...options.limits };
  const budget = new WalkBudget(limits);
  const candidates =
    options.configured.trim().length > 0
      ? configuredCandidates(options.configured, budget)
      : options.discover === false
        ? []
        : storeCandidates(options, budget);
  if (budget.exhausted)
    options.warn?.(`model discovery stopped after ${limits.entriesMax} folder entries; some models may be missing`);
  candidates.sort(byPrecedence);
  if (candidates.length > limits.modelsMax)
    options.warn?.(`found ${candidates.length} models; listing the first ${limits.modelsMax}`);
  if (candidates.length === 0) return [];
  // Only here: the CLI imports this module's callers and must start without the model runtime.
  const reader = await import("node-llama-cpp");
  const classified: Classified[] = [];
  for (const candidate of candidates.slice(0, limits.modelsMax)) {
    const model = await classify(candidate, reader);
    if (model !== undefined) classified.push(model);
  }
  return withUniqueIds(classified);
}

function configuredCandidates(spec: string, budget: WalkBudget): Candidate[] {
  const files: string[] = [];
  for (const entry of spec.split(",").map((part) => part.trim())) {
    if (entry.length === 0) continue;
    const path = resolve(entry);
    const stats = statOrUndefined(path);
    if (stats === undefined) throw new Error(`POTLUCK_MODELS: ${path} does not exist`);
    files.push(...(stats.isDirectory() ? findGgufFiles(path, budget) : [path]));
  }
  return groupFiles([...new Set(files)], "configured");
}

function storeCandidates(options: DiscoverOptions, budget: WalkBudget): Candidate[] {
  const ollamaRoot = options.env.OLLAMA_MODELS ?? join(options.home, ".ollama", "models");
  const ollama = ollamaModels(ollamaRoot, budget).map((m): Candidate => ({
    name: m.id,
    source: "ollama",
    path: m.path,
    parts: [m.path],
    ...pick(m.problem),
  }));
  return [
    ...ollama,
    ...groupFiles(lmStudioFiles(options.home, budget), "lmstudio"),
    ...groupFiles(huggingFaceFiles(options.env, options.home, budget), "huggingface"),
  ];
}

function pick(problem: string | undefined): { problem?: string } {
  return problem === undefined ? {} : { problem };
}

function byPrecedence(a: Candidate, b: Candidate): number {
  return (
    precedence.indexOf(a.source) - precedence.indexOf(b.source) || compare(a.name, b.name) || compare(a.path, b.path)
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The first (by store precedence, then path) keeps the plain name; a later model of the same
 * name becomes `name@store`, then `name@store-2`…: deterministic, and each stays reachable.
 */
function withUniqueIds(models: readonly Classified[]): ModelSource[] {
  const taken = new Set<string>();
  return models.map((model) => {
    let id = model.name;
    for (let n = 1; taken.has(id); n++) id = `${model.name}@${model.source}${n === 1 ? "" : `-${n}`}`;
    taken.add(id);
    return toSource(id, model);
  });
}

function toSource(id: string, model: Classified): ModelSource {
  const { name: _name, problem, sizeBytes, family, quantization, modifiedAt, ...rest } = model;
  return {
    id,
    ...rest,
    ...(sizeBytes === undefined ? {} : { sizeBytes }),
    ...(family === undefined ? {} : { family }),
    ...(quantization === undefined ? {} : { quantization }),
    ...(modifiedAt === undefined ? {} : { modifiedAt }),
    ...(problem === undefined ? {} : { problem }),
  };
}

/** The discovery fields of a source as the engine lists them (ModelInfo), so every surface shows the same. */
export function describeSource(source: ModelSource): Omit<ModelInfo, "state"> {
  return {
    id: source.id,
    testModel: source.testModel,
    ...(source.kind === undefined ? {} : { kind: source.kind }),
    ...(source.source === undefined ? {} : { source: source.source }),
    ...(source.sizeBytes === undefined ? {} : { sizeBytes: source.sizeBytes }),
    ...(source.family === undefined ? {} : { family: source.family.slice(0, 128) }),
    ...(source.quantization === undefined ? {} : { quantization: source.quantization.slice(0, 64) }),
    ...(source.modifiedAt === undefined ? {} : { modifiedAt: source.modifiedAt }),
  };
}
