import { afterEach, describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../src/config.js";
import { EngineError, type EngineEvent, type ModelSource } from "../src/inference/engine.js";
import { LlamaEngine, type LlamaEngineOptions } from "../src/inference/llama-engine.js";
import { parseKeepAlive } from "../src/inference/lifecycle/keep-alive.js";
import { planEviction } from "../src/inference/lifecycle/lru.js";
import { testEngineOptions, tinyModelId, tinyModelPath } from "./fixtures.js";
import { newIdentity, startSidecar } from "./harness.js";

// The models lifecycle on the real runtime and the generated tiny model (it loads in about a
// second): registered as available, loaded by its first request, unloaded when idle or evicted.

const hello = [{ role: "user" as const, content: "Hello" }];

function sourceOf(seed: number, extra: Partial<ModelSource> = {}): ModelSource {
  return { id: tinyModelId(seed), path: tinyModelPath(seed), testModel: true, ...extra };
}

const engines: LlamaEngine[] = [];
function engineWith(options: Partial<LlamaEngineOptions> = {}, ...sources: ModelSource[]): LlamaEngine {
  const engine = new LlamaEngine({ ...testEngineOptions, ...options });
  for (const source of sources) engine.register(source);
  engines.push(engine);
  return engine;
}
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
}, 120_000);

async function run(engine: LlamaEngine, id: string, extra: { keepAliveMs?: number } = {}): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  for await (const event of engine.stream(id, { messages: hello, maxTokens: 4, ...extra })) events.push(event);
  return events;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("keep-alive as Ollama writes it", () => {
  it("parses durations, seconds, -1 and 0, and names what it expects otherwise", () => {
    expect(parseKeepAlive("5m")).toBe(300_000);
    expect(parseKeepAlive("30s")).toBe(30_000);
    expect(parseKeepAlive("1h30m")).toBe(5_400_000);
    expect(parseKeepAlive("250ms")).toBe(250);
    expect(parseKeepAlive("300")).toBe(300_000);
    expect(parseKeepAlive("-1")).toBe(-1);
    expect(parseKeepAlive("-5m")).toBe(-1);
    expect(parseKeepAlive("0")).toBe(0);
    expect(parseKeepAlive("5 minutes")).toBeInstanceOf(Error);
    expect(String(parseKeepAlive("soon"))).toMatch(/expected a duration such as 5m.*"soon"/);
  });

  it("is read from POTLUCK_KEEP_ALIVE, with GPU and the loaded-model cap beside it", () => {
    const config = loadSidecarConfig({ POTLUCK_KEEP_ALIVE: "30s", POTLUCK_MAX_LOADED: "2", POTLUCK_GPU: "off" }, []);
    expect(config).toMatchObject({ POTLUCK_KEEP_ALIVE: 30_000, POTLUCK_MAX_LOADED: 2, POTLUCK_GPU: "off" });
    expect(loadSidecarConfig({}, [])).toMatchObject({ POTLUCK_KEEP_ALIVE: 300_000, POTLUCK_GPU: "auto" });
    expect(() => loadSidecarConfig({ POTLUCK_KEEP_ALIVE: "later" }, [])).toThrow(
      /POTLUCK_KEEP_ALIVE.*expected a duration/s,
    );
    expect(() => loadSidecarConfig({ POTLUCK_GPU: "rocm" }, [])).toThrow(/POTLUCK_GPU.*expected auto, off, cuda/s);
  });
});

describe("eviction plan", () => {
  const resident = (id: string, lastUsedAt: number, busy = false) => ({
    id,
    lastUsedAt,
    busy,
    ramBytes: 100,
    vramBytes: 0,
  });
  it("unloads the least recently used idle models first, and never a busy one", () => {
    const residents = [resident("new", 3), resident("old", 1, true), resident("mid", 2)];
    expect(
      planEviction(residents, { ramBytes: 150, vramBytes: 0 }, { maxLoaded: 9, freeRamBytes: 0, freeVramBytes: 0 }),
    ).toEqual({
      ok: true,
      evict: ["mid", "new"],
    });
    expect(
      planEviction(residents, { ramBytes: 10, vramBytes: 0 }, { maxLoaded: 3, freeRamBytes: 50, freeVramBytes: 0 }),
    ).toEqual({
      ok: true,
      evict: ["mid"],
    });
    expect(
      planEviction(residents, { ramBytes: 250, vramBytes: 0 }, { maxLoaded: 9, freeRamBytes: 0, freeVramBytes: 0 }),
    ).toMatchObject({
      ok: false,
      why: "memory",
      freeRamBytes: 200,
    });
  });
});

// Generous: each load probes the file in a child process, slow on a shared 2-core machine.
describe("LlamaEngine lifecycle on the tiny model", { timeout: 300_000 }, () => {
  it("lists a registered model as available, loads it on the first request with progress, then generates", async () => {
    const source = sourceOf(1, { source: "test", sizeBytes: 1234 });
    const engine = engineWith({}, source);
    expect(engine.state(source.id)).toMatchObject({ state: "available", source: "test", sizeBytes: 1234 });
    expect(engine.state(source.id)?.runtime).toBeUndefined();
    const seen: string[] = [];
    const events: EngineEvent[] = [];
    // Two requests at once share one load: both see progress, both are answered.
    const [a, b] = await Promise.all([
      (async () => {
        for await (const event of engine.stream(source.id, { messages: hello, maxTokens: 4 })) {
          events.push(event);
          if (event.type === "loading") seen.push(engine.state(source.id)!.state);
        }
        return events;
      })(),
      run(engine, source.id),
    ]);
    const firstToken = a.findIndex((e) => e.type === "token");
    expect(a.slice(0, firstToken).every((e) => e.type === "loading")).toBe(true);
    expect(firstToken).toBeGreaterThan(0);
    expect(seen[0]).toBe("loading");
    const progress = a.filter((e) => e.type === "loading").map((e) => e.progress);
    expect(progress.at(-1)).toBe(1);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    expect(b.filter((e) => e.type === "loading").length).toBeGreaterThan(0);
    expect(b.at(-1)).toMatchObject({ type: "done" });
    const ready = engine.state(source.id)!;
    expect(ready).toMatchObject({ state: "ready", testModel: true, source: "test" });
    expect(ready.runtime).toMatchObject({ backend: "cpu", gpuLayers: 0, vramBytes: 0 });
    expect(ready.runtime!.ramBytes).toBeGreaterThan(0);
    expect(Date.parse(ready.runtime!.expiresAt!) - Date.now()).toBeGreaterThan(4 * 60_000);
    // Warm: no loading events any more.
    expect((await run(engine, source.id)).some((e) => e.type === "loading")).toBe(false);
  });

  it("unloads after a short keep-alive idle, and loads again on the next request", async () => {
    const source = sourceOf(1);
    const engine = engineWith({ keepAliveMs: 300 }, source);
    await run(engine, source.id);
    expect(engine.state(source.id)?.state).toBe("ready");
    await sleep(800);
    expect(engine.state(source.id)).toMatchObject({ state: "available" });
    expect((await run(engine, source.id)).some((e) => e.type === "loading")).toBe(true);
  });

  it("keeps a model loaded with keep_alive -1 and unloads it right after the request with 0", async () => {
    const source = sourceOf(1);
    const engine = engineWith({ keepAliveMs: 200 }, source);
    await run(engine, source.id, { keepAliveMs: -1 });
    expect(engine.state(source.id)?.runtime?.expiresAt).toBeNull();
    await sleep(500);
    expect(engine.state(source.id)?.state).toBe("ready");
    await run(engine, source.id, { keepAliveMs: 0 });
    expect(engine.state(source.id)?.state).toBe("available");
  });

  it("with POTLUCK_MAX_LOADED=1 unloads the least recently used model, never the one generating", async () => {
    const [a, b] = [sourceOf(1), sourceOf(2)];
    const engine = engineWith({ maxLoaded: 1 }, a, b);
    await run(engine, a.id);
    await run(engine, b.id);
    expect([engine.state(a.id)?.state, engine.state(b.id)?.state]).toEqual(["available", "ready"]);
    // b is mid-reply: a cannot take its place until it is done.
    const busy = engine.stream(b.id, { messages: hello, maxTokens: 64 });
    expect((await busy.next()).value).toMatchObject({ type: "token" });
    const refused = await run(engine, a.id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EngineError);
    expect(refused).toMatchObject({ status: 503, code: "no_room" });
    expect(String((refused as Error).message)).toMatch(/loaded models are all busy \(POTLUCK_MAX_LOADED=1\)/);
    await busy.return(undefined);
    await run(engine, a.id);
    expect([engine.state(a.id)?.state, engine.state(b.id)?.state]).toEqual(["ready", "available"]);
  });

  it("keeps what fits in a memory budget by node-llama-cpp's estimate, evicting LRU, and refuses what never fits", async () => {
    const [a, b] = [sourceOf(1), sourceOf(2)];
    const probe = engineWith({}, a);
    await run(probe, a.id);
    const need = probe.state(a.id)!.runtime!.ramBytes;
    const engine = engineWith({ memoryBudgetBytes: Math.floor(need * 1.5) }, a, b);
    await run(engine, a.id);
    await run(engine, b.id);
    expect([engine.state(a.id)?.state, engine.state(b.id)?.state]).toEqual(["available", "ready"]);

    const small = engineWith({ memoryBudgetBytes: Math.floor(need / 2) }, a);
    const error = await run(small, a.id).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 507, code: "model_too_large" });
    expect((error as Error).message).toMatch(
      new RegExp(
        `^model ${a.id} does not fit in memory: it needs [\\d.]+ MiB RAM \\(node-llama-cpp's estimate\\) but only [\\d.]+ MiB RAM is free of a [\\d.]+ MiB budget$`,
      ),
    );
    // Refused for room, not broken: it stays available.
    expect(small.state(a.id)?.state).toBe("available");
  });

  it("lists a source with a problem as failed with its reason and never loads it; an embedder is not a chat model", async () => {
    const broken = sourceOf(1, { id: "broken", problem: "truncated: the file ends inside its tensor data" });
    const embedder = sourceOf(2, { id: "embedder", kind: "embedding" });
    const engine = engineWith({}, broken, embedder);
    expect(engine.state("broken")).toMatchObject({
      state: "failed",
      reason: "truncated: the file ends inside its tensor data",
    });
    await expect(run(engine, "broken")).rejects.toMatchObject({ code: "model_failed", message: /truncated/ });
    expect(engine.state("broken")?.state).toBe("failed");
    await expect(run(engine, "embedder")).rejects.toMatchObject({ status: 400, code: "not_a_chat_model" });
    const { vectors } = await engine.embed("embedder", ["hello"]);
    expect(vectors[0]!.length).toBeGreaterThan(0);
    expect(engine.state("embedder")).toMatchObject({ state: "ready", kind: "embedding" });
  });
});

describe("GPU selection", { timeout: 300_000 }, () => {
  it("auto resolves to CPU on this machine (no usable GPU): no GPU reported, no layers offloaded", async () => {
    const engine = engineWith({ gpu: "auto" }, sourceOf(1));
    await engine.start();
    expect(engine.gpu()).toBeNull();
    await run(engine, tinyModelId(1));
    expect(engine.state(tinyModelId(1))?.runtime).toMatchObject({ backend: "cpu", gpuLayers: 0 });
  });

  it("a named backend that is not there is a clear start-up error", async () => {
    const engine = engineWith({ gpu: "cuda" });
    await expect(engine.start()).rejects.toThrow(
      /^POTLUCK_GPU=cuda: the cuda backend is not available on this machine \(.+\); set POTLUCK_GPU=auto/s,
    );
  });
});

describe("over HTTP", { timeout: 300_000 }, () => {
  it("answers a model that does not fit with 507 model_too_large naming the model, its need and what is free", async () => {
    const engine = engineWith({ memoryBudgetBytes: 1024 * 1024 }, sourceOf(1));
    const sidecar = await startSidecar({ machine: "solo", engine, identity: newIdentity("solo") });
    try {
      const res = await fetch(`${sidecar.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: tinyModelId(1), messages: hello, max_tokens: 4 }),
      });
      expect(res.status).toBe(507);
      const body = (await res.json()) as { error: { code: string; message: string; field?: string } };
      expect(body.error).toMatchObject({ code: "model_too_large", field: "model" });
      expect(body.error.message).toMatch(
        new RegExp(
          `model ${tinyModelId(1)} does not fit in memory: it needs [\\d.]+ MiB RAM .* but only 1\\.0 MiB RAM is free of a 1\\.0 MiB budget`,
        ),
      );
      // Listed as available still (it was refused for room, not broken).
      const models = (await (await fetch(`${sidecar.url}/v1/models`)).json()) as {
        data: Array<{ potluck: { state: string } }>;
      };
      expect(models.data[0]?.potluck.state).toBe("available");
    } finally {
      await sidecar.close();
    }
  });
});
