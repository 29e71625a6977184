import { join } from "node:path";
import { createLexicalEmbedder } from "./lexical-embedder.js";
import { createLlamaEmbedder } from "./llama-embedder.js";
import { MemoryStore } from "./store.js";
import type { Embedder } from "./embedder.js";
import type { GpuSetting } from "../inference/gpu-settings.js";

export interface OpenMemoryOptions {
  /** The store lives in DATA_DIR/memory. */
  dataDir: string;
  /** GGUF embedding model; undefined means the weight-free lexical embedder. */
  embedModel?: string;
  /** For a GGUF embedder: the runtime's threads and GPU setting, the chat models' own. */
  threads?: number;
  gpu?: GpuSetting;
  /** Days without access after which a memory is cold; undefined keeps the store's default. */
  coldDays?: number;
  /** Rows per project tier past which an HNSW index is built; undefined keeps the store's default. */
  annThresholdRows?: number;
}

export interface OpenedMemory {
  store: MemoryStore;
  embedder: Embedder;
  close(): Promise<void>;
}

/** Loads the embedder (now, not on the first request) and opens the store in DATA_DIR/memory. */
export async function openMemory(options: OpenMemoryOptions): Promise<OpenedMemory> {
  const embedder =
    options.embedModel === undefined
      ? createLexicalEmbedder()
      : await createLlamaEmbedder({
          modelPath: options.embedModel,
          ...(options.threads === undefined ? {} : { threads: options.threads }),
          ...(options.gpu === undefined ? {} : { gpu: options.gpu }),
        });
  const store = await MemoryStore.open({
    dir: join(options.dataDir, "memory"),
    embedder,
    ...(options.coldDays === undefined ? {} : { coldAfterMs: options.coldDays * 86_400_000 }),
    ...(options.annThresholdRows === undefined ? {} : { ann: { thresholdRows: options.annThresholdRows } }),
  });
  return {
    store,
    embedder,
    close: async () => {
      store.close();
      await embedder.close();
    },
  };
}
