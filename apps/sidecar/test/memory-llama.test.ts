import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "@potluck/gguf";
import type { Embedder } from "../src/memory/embedder.js";
import { createLlamaEmbedder } from "../src/memory/llama-embedder.js";
import { MemoryStore } from "../src/memory/store.js";
import { defaults, openStore } from "./memory-helpers.js";

// The tiny GGUF has random weights: its vectors mean nothing, but node-llama-cpp really loads it
// and really computes them, which is what this proves (loading, dimensions, normalization,
// determinism, and that the store keeps its vectors apart from the lexical embedder's).
describe("node-llama-cpp embedder on the tiny GGUF", () => {
  const dir = mkdtempSync(join(tmpdir(), "potluck-memory-llama-"));
  let embedder: Embedder;
  beforeAll(async () => {
    embedder = await createLlamaEmbedder({ modelPath: ensureTinyModel(join(dir, "models")) });
  }, 180_000);
  afterAll(async () => {
    await embedder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("embeds to deterministic unit vectors of the model's width, with a file-bound id", async () => {
    expect(embedder.id).toMatch(/^gguf:.+\.gguf:\d+:[0-9a-f]{12}$/);
    const a = await embedder.embed("the garage code is 4417");
    const again = await embedder.embed("the garage code is 4417");
    const b = await embedder.embed("a completely different sentence about cats");
    expect(a).toHaveLength(embedder.dimensions);
    expect(Math.hypot(...a)).toBeCloseTo(1, 4);
    expect(Array.from(again)).toEqual(Array.from(a));
    expect(Array.from(b)).not.toEqual(Array.from(a));
  });

  it.skipIf(process.platform === "darwin")(
    "honours POTLUCK_GPU like the chat models: a backend that is not there is an error naming it",
    async () => {
      // Metal exists only on macOS, so here the setting must fail loudly, not fall back to CPU.
      await expect(
        createLlamaEmbedder({ modelPath: ensureTinyModel(join(dir, "models")), gpu: "metal", threads: 1 }),
      ).rejects.toThrow(/POTLUCK_GPU=metal: the metal backend is not available on this machine/);
    },
  );

  it("stores and finds with it; the lexical embedder then sees those records as foreign", async () => {
    const storeDir = join(dir, "store");
    const store = await MemoryStore.open({ dir: storeDir, embedder });
    const record = await store.add({ ...defaults, text: "the garage code is 4417" });
    const hits = await store.search(
      "the garage code is 4417",
      { minConfidence: 0, limit: 1, includeCold: false },
      { touch: false },
    );
    expect(hits[0]?.record).toMatchObject({ id: record.id, embedderId: embedder.id });
    expect(hits[0]?.score).toBeCloseTo(1, 4);
    store.close();
    const lexical = await openStore(storeDir);
    try {
      expect(lexical.counts().foreign).toEqual([{ embedderId: embedder.id, records: 1 }]);
      expect(
        await lexical.search("garage code", { minConfidence: 0, limit: 5, includeCold: true }, { touch: false }),
      ).toEqual([]);
    } finally {
      lexical.close();
    }
  });
});
