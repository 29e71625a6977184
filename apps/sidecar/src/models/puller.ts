import { rmSync } from "node:fs";
import { join } from "node:path";
import { PotluckHttpError } from "@potluck/protocol";
import type { InferenceEngine } from "../inference/engine.js";
import { PulledManifest, type PulledModel } from "./manifest.js";
import { pullModel, PullError, type PullProgress } from "./pull.js";

/**
 * One pull's progress as Ollama's /api/pull reports it (`status`, `total`, `completed`), with the
 * rate and time left alongside for Potluck's own CLI. Structurally the `ModelPuller` progress the
 * Ollama front end declares (routes/ollama/), so this object is passed to it as is.
 */
export interface PullerProgress {
  status: string;
  total?: number;
  completed?: number;
  bytesPerS?: number;
  etaS?: number;
}

/** The `ModelPuller` shape the Ollama routes call; `pull` resolves once the model is registered. */
export interface PotluckModelPuller {
  pull(ref: string, onProgress: (progress: PullerProgress) => void, signal?: AbortSignal): Promise<{ id: string }>;
}

/** Pulls at once per sidecar: each is a download of gigabytes; more would only split the bandwidth. */
export const concurrentPullsMax = 2;

export interface PullerDeps {
  /** Potluck's pulled-models folder (DATA_DIR/models/pulled). */
  dir: string;
  engine: Pick<InferenceEngine, "load" | "unload" | "state">;
  /** Where `hf:` resolves; absent: node-llama-cpp's default (HF_ENDPOINT or huggingface.co). */
  hfEndpoint?: string;
}

/** The result of a pull as the sidecar route reports it. */
export interface PullDone extends PulledModel {
  path: string;
  already: boolean;
}

/**
 * Potluck's pulled models: download (pull.ts), register with the engine, list, and remove only
 * what it pulled. The Ollama front end gets `asModelPuller()`; the sidecar's own route and the CLI
 * use `pull` for the richer result.
 */
export class PulledModels {
  private readonly active = new Set<string>();
  readonly manifest: PulledManifest;

  constructor(private readonly deps: PullerDeps) {
    this.manifest = new PulledManifest(deps.dir);
  }

  list(): PulledModel[] {
    return this.manifest.list();
  }

  async pull(
    ref: string,
    options: { sha256?: string; onProgress?: (p: PullerProgress) => void; signal?: AbortSignal } = {},
  ): Promise<PullDone> {
    const key = ref.trim();
    if (this.active.has(key))
      throw new PotluckHttpError(409, "pull_in_progress", `ref: ${key} is already being pulled`, "ref");
    if (this.active.size >= concurrentPullsMax)
      throw new PotluckHttpError(
        503,
        "pulls_busy",
        `${concurrentPullsMax} pulls are already running on this machine; try again when one has finished`,
      );
    this.active.add(key);
    try {
      const pulled = await pullModel(ref, {
        dir: this.deps.dir,
        ...(options.sha256 === undefined ? {} : { sha256: options.sha256 }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(this.deps.hfEndpoint === undefined ? {} : { hfEndpoint: this.deps.hfEndpoint }),
        onProgress: (p) => options.onProgress?.(asPullerProgress(p, ref)),
      }).catch((error: unknown) => {
        throw asHttp(error);
      });
      options.onProgress?.({ status: "loading model" });
      // The engine loads it now (lifecycle will make this lazy); a file that will not load stays pulled.
      if (this.deps.engine.state(pulled.id) === undefined)
        await this.deps.engine
          .load({ id: pulled.id, path: pulled.path, testModel: false, source: "potluck", sizeBytes: pulled.sizeBytes })
          .catch((error: unknown) => {
            throw new PotluckHttpError(
              502,
              "model_failed",
              `pulled ${pulled.id} to ${pulled.path}, but it did not load: ` +
                (error instanceof Error ? error.message : String(error)),
            );
          });
      return pulled;
    } finally {
      this.active.delete(key);
    }
  }

  /**
   * Removes a model Potluck pulled: unloads it and deletes its files. Anything else is refused
   * with why: Potluck never deletes a file it did not download.
   */
  async remove(id: string): Promise<PulledModel> {
    const model = this.manifest.get(id);
    if (model === undefined) {
      const here = this.deps.engine.state(id);
      if (here === undefined)
        throw new PotluckHttpError(
          404,
          "model_not_found",
          `model: no model called ${JSON.stringify(id)} here`,
          "model",
        );
      throw new PotluckHttpError(
        409,
        "not_pulled",
        `model: ${id} was not pulled by Potluck (its source is ${here.source ?? "POTLUCK_MODELS"}); ` +
          "Potluck removes only what it downloaded — delete it where it came from",
        "model",
      );
    }
    if (this.deps.engine.state(id) !== undefined) await this.deps.engine.unload(id, { forget: true });
    for (const file of model.files) rmSync(join(this.deps.dir, file), { force: true });
    this.manifest.remove(id);
    return model;
  }

  /** The object the Ollama front end's /api/pull calls. */
  asModelPuller(): PotluckModelPuller {
    return {
      pull: async (ref, onProgress, signal) => {
        const done = await this.pull(ref, { onProgress, ...(signal === undefined ? {} : { signal }) });
        return { id: done.id };
      },
    };
  }
}

function asPullerProgress(p: PullProgress, ref: string): PullerProgress {
  const status =
    p.status === "resolving"
      ? "pulling manifest"
      : p.status === "verifying"
        ? "verifying sha256 digest"
        : `downloading ${ref}`;
  return {
    status,
    ...(p.totalBytes === undefined ? {} : { total: p.totalBytes }),
    ...(p.completedBytes === undefined ? {} : { completed: p.completedBytes }),
    ...(p.bytesPerS === undefined ? {} : { bytesPerS: p.bytesPerS }),
    ...(p.etaS === undefined ? {} : { etaS: p.etaS }),
  };
}

function asHttp(error: unknown): unknown {
  if (error instanceof PullError) return new PotluckHttpError(error.status, error.code, error.message, error.field);
  return error;
}
