import { open, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { createHash } from "node:crypto";
import type { GpuSetting } from "../inference/gpu-settings.js";
import type { Embedder } from "./embedder.js";
import { normalizeInPlace } from "./embedder.js";

/**
 * An embedder backed by any GGUF embedding model through node-llama-cpp. The model loads when
 * this is called (at start-up, never on the first request: a lazily loaded embedder turned the
 * first cross-machine query into 22 s in the field notes). Its id carries a fingerprint of the
 * file, so swapping the model file marks older vectors as foreign instead of comparing them.
 */
export async function createLlamaEmbedder({
  modelPath,
  contextSize = 512,
  threads = availableParallelism(),
  gpu = "auto",
}: {
  modelPath: string;
  contextSize?: number;
  /** The real core count: llama.cpp's default of at least 4 threads crawls on a 2-core machine. */
  threads?: number;
  /** POTLUCK_GPU, as the chat models get it: prebuilt binaries only, a named backend or an error. */
  gpu?: GpuSetting;
}): Promise<Embedder> {
  // Imported here so a machine on the lexical default never loads the native runtime.
  const { openLlama } = await import("../inference/gpu.js");
  const fingerprint = await fileFingerprint(modelPath);
  const llama = await openLlama(gpu, threads);
  const model = await llama.loadModel({ modelPath });
  const context = await model.createEmbeddingContext({ contextSize, threads });
  const dimensions = model.embeddingVectorSize;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    id: `gguf:${basename(modelPath)}:${dimensions}:${fingerprint}`,
    dimensions,
    embed(text) {
      // One sequence at a time on the context; callers queue behind each other.
      const run = queue.then(async () => {
        if (closed) throw new Error("embedding: the embedder is closed");
        const embedding = await context.getEmbeddingFor(text);
        const vector = Float32Array.from(embedding.vector);
        if (vector.length !== dimensions)
          throw new Error(`embedding: model returned ${vector.length} dimensions, expected ${dimensions}`);
        if (!normalizeInPlace(vector)) vector[0] = 1;
        return vector;
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await context.dispose();
      await model.dispose();
    },
  };
}

/** Size plus a hash of the first MiB: cheap on a multi-GB file, and changes when the model does. */
async function fileFingerprint(path: string): Promise<string> {
  const headBytes = 1024 * 1024;
  const info = await stat(path).catch((error: unknown) => {
    throw new Error(`reading embedding model ${path}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(Math.min(headBytes, info.size));
    await handle.read(buffer, 0, buffer.length, 0);
    return createHash("sha256").update(String(info.size)).update(buffer).digest("hex").slice(0, 12);
  } finally {
    await handle.close();
  }
}
