import { join } from "node:path";
import { parseConfig } from "@potluck/service";
import { z } from "zod";
import { createLexicalEmbedder } from "./lexical-embedder.js";
import { createLlamaEmbedder } from "./llama-embedder.js";
import { MemoryStore, StoreDefaults } from "./store.js";
import type { Embedder } from "./embedder.js";

/** Memory settings, parsed once at start-up by main.ts next to the sidecar's own config. */
export const MemoryConfigSchema = z.object({
  POTLUCK_DATA_DIR: z.string().min(1).optional(),
  /** GGUF embedding model; unset means the weight-free lexical embedder. */
  POTLUCK_EMBED_MODEL: z.string().min(1).optional(),
  /** Days without access after which a memory is cold (skipped unless includeCold or re-accessed). */
  POTLUCK_MEMORY_COLD_DAYS: z.coerce.number().positive("expected a positive number of days").default(StoreDefaults.coldAfterMs / 86_400_000),
  /** Rows per project tier past which an HNSW index is built; below it search is exact only. */
  POTLUCK_MEMORY_ANN_THRESHOLD: z.coerce.number().int().min(1_000, "expected at least 1000 rows").default(StoreDefaults.ann.thresholdRows),
});
export type MemoryConfig = z.infer<typeof MemoryConfigSchema>;

export function loadMemoryConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = process.argv.slice(2)): MemoryConfig {
  return parseConfig(MemoryConfigSchema, env, argv);
}

/** Loads the embedder (now, not on the first request) and opens the store in DATA_DIR/memory. */
export async function openMemory(config: MemoryConfig, dataDir: string): Promise<{ store: MemoryStore; embedder: Embedder; close: () => Promise<void> }> {
  const embedder = config.POTLUCK_EMBED_MODEL === undefined ? createLexicalEmbedder() : await createLlamaEmbedder({ modelPath: config.POTLUCK_EMBED_MODEL });
  const store = await MemoryStore.open({
    dir: join(dataDir, "memory"),
    embedder,
    coldAfterMs: config.POTLUCK_MEMORY_COLD_DAYS * 86_400_000,
    ann: { thresholdRows: config.POTLUCK_MEMORY_ANN_THRESHOLD },
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
