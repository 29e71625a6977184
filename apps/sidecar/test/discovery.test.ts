import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyGguf } from "@potluck/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverModels } from "../src/inference/discovery/index.js";
import type { ModelSource } from "../src/inference/engine.js";
import { buildFakeStores, type FakeStores } from "./discovery-stores.js";

// Unit level: discovery over fake stores the test builds from generated GGUFs (no runtime is
// loaded; headers are read by node-llama-cpp's own GGUF reader). The sidecar over the same
// stores is discovery-sidecar.test.ts.
const scratch = mkdtempSync(join(tmpdir(), "potluck-discovery-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let stores: FakeStores;
let found: ModelSource[];
beforeAll(async () => {
  stores = buildFakeStores(join(scratch, "home"));
  found = await discoverModels({ configured: "", env: {}, home: stores.home });
}, 60_000);

const byId = (id: string) => {
  const model = found.find((m) => m.id === id);
  if (model === undefined) throw new Error(`no model ${id} in ${found.map((m) => m.id).join(", ")}`);
  return model;
};

describe("discoverModels over the stores a household has", () => {
  it("serves an Ollama blob in place under name:tag, and namespaced names with their namespace", () => {
    expect(byId("tinychat:latest")).toMatchObject({
      path: stores.paths.ollamaChat,
      source: "ollama",
      kind: "chat",
      family: "llama",
      testModel: true,
    });
    expect(byId("tinychat:latest").problem).toBeUndefined();
    expect(byId("tinychat:latest").sizeBytes).toBe(tinyGguf(11).length);
    expect(byId("someone/embedder:v1")).toMatchObject({ source: "ollama", kind: "embedding", family: "bert" });
    expect(byId("hf.co/org/gone:Q4_K_M").problem).toMatch(/blob .*sha256-0{64} is missing/);
  });

  it("finds LM Studio's folders (new and old) and leaves projector files out", () => {
    expect(byId("chat-q8")).toMatchObject({ path: stores.paths.lmChat, source: "lmstudio", kind: "chat" });
    expect(byId("old-chat")).toMatchObject({ path: stores.paths.lmOld, source: "lmstudio", kind: "chat" });
    expect(byId("embed-llama")).toMatchObject({ source: "lmstudio", kind: "embedding", family: "llama" });
    const paths = found.map((m) => m.path);
    expect(paths).not.toContain(stores.paths.lmProjectorByName);
    expect(paths).not.toContain(stores.paths.lmProjectorByMeta);
  });

  it("reads the newest Hugging Face snapshot through its symlinks; a split model is one model of all its parts", () => {
    const split = byId("split-model");
    expect(split).toMatchObject({ source: "huggingface", kind: "chat", path: stores.paths.split1 });
    expect(split.parts).toEqual([stores.paths.split1, stores.paths.split2, stores.paths.split3]);
    expect(split.problem).toBeUndefined();
    // Symlinks are followed: the size is the blobs' bytes, not the links'.
    expect(split.sizeBytes).toBeGreaterThan(100_000);
    expect(found.some((m) => m.id.startsWith("only-in-old-snapshot"))).toBe(false);
    expect(byId("partial").problem).toMatch(/partial-00002-of-00003\.gguf missing/);
  });

  it("lists a truncated file and one llama.cpp would abort on, each with its reason", () => {
    expect(byId("truncated").problem).toMatch(
      /^truncated: truncated\.gguf is \d+ bytes but its tensors end at byte \d+/,
    );
    expect(byId("no-heads").problem).toMatch(/lacks required GGUF metadata \(llama\.attention\.head_count\)/);
  });

  it("gives a name two stores share to the first store and name@store to the other, the same every time", async () => {
    expect(byId("chat-q8").source).toBe("lmstudio");
    expect(byId("chat-q8@huggingface")).toMatchObject({ source: "huggingface", path: stores.paths.hfDuplicate });
    const again = await discoverModels({ configured: "", env: {}, home: stores.home });
    expect(again).toEqual(found);
    expect(new Set(found.map((m) => m.id)).size).toBe(found.length);
  });

  it("takes OLLAMA_MODELS and HF_HUB_CACHE over the defaults, and finds nothing with discovery off", async () => {
    const elsewhere = join(scratch, "empty-home");
    mkdirSync(elsewhere, { recursive: true });
    const moved = await discoverModels({
      configured: "",
      env: { OLLAMA_MODELS: stores.ollamaRoot, HF_HUB_CACHE: join(stores.home, ".cache", "huggingface", "hub") },
      home: elsewhere,
    });
    expect(moved.map((m) => m.source).sort()).toEqual(
      found
        .filter((m) => m.source !== "lmstudio")
        .map((m) => m.source)
        .sort(),
    );
    expect(await discoverModels({ configured: "", discover: false, env: {}, home: stores.home })).toEqual([]);
  });
});

describe("POTLUCK_MODELS and the limits", () => {
  it("wins over the stores and searches its folders recursively", async () => {
    const dir = join(scratch, "configured", "a", "b");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "deep.gguf"), tinyGguf(30));
    const models = await discoverModels({ configured: join(scratch, "configured"), env: {}, home: stores.home });
    expect(models.map((m) => [m.id, m.source, m.kind])).toEqual([["deep", "configured", "chat"]]);
  });

  it("stops walking at the entry limit and lists at most modelsMax models", async () => {
    const warnings: string[] = [];
    const few = await discoverModels({
      configured: "",
      env: {},
      home: stores.home,
      limits: { modelsMax: 2 },
      warn: (m) => warnings.push(m),
    });
    expect(few).toHaveLength(2);
    expect(warnings.join()).toMatch(/listing the first 2/);
    const walked = await discoverModels({
      configured: "",
      env: {},
      home: stores.home,
      limits: { entriesMax: 3 },
      warn: (m) => warnings.push(m),
    });
    expect(walked.length).toBeLessThan(found.length);
    expect(warnings.join()).toMatch(/stopped after 3 folder entries/);
  });
});
