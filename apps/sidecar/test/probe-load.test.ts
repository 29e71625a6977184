import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyGguf, TinyModelShape } from "@potluck/gguf";
import { serveApp, type ServedApp } from "@potluck/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSidecarConfig, startSidecarService, type SidecarService } from "../src/index.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { probeLoad } from "../src/inference/probe-load.js";
import { noPeers } from "../src/peer/directory.js";
import { testEngineOptions, tinyModelPath } from "./fixtures.js";
import { newIdentity, recordingUsage } from "./harness.js";

// Attack 12: a model file whose metadata contradicts its tensors. A head count of 0 passes the
// key-presence check, and llama.cpp asserts on it while loading: in the sidecar's own process
// that assertion aborts this very test worker. The file comes from libs/gguf's writer.
let dir: string;
let headless: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "potluck-probe-"));
  headless = join(dir, "head-count-zero.gguf");
  writeFileSync(headless, tinyGguf(7, TinyModelShape, { "llama.attention.head_count": 0 }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("probeLoad", () => {
  it("passes a good model file and names why a bad one failed in its child process", async () => {
    expect(await probeLoad(tinyModelPath())).toEqual({ ok: true });
    const bad = await probeLoad(headless);
    expect(bad.ok).toBe(false);
    expect(bad.ok === false && bad.reason).toMatch(/crashed \(SIGABRT\)|GGML_ASSERT/);
    expect(await probeLoad(join(dir, "missing.gguf"))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/cannot read/),
    });
  }, 120_000);
});

describe("a sidecar given a model file that would abort llama.cpp", () => {
  let service: SidecarService;
  let served: ServedApp;
  let engine: LlamaEngine;
  const good = "tiny";
  beforeAll(async () => {
    const config = loadSidecarConfig(
      {
        POTLUCK_MACHINE: "home1",
        POTLUCK_DATA_DIR: dir,
        POTLUCK_CPU_PIN: "off",
        POTLUCK_THREADS: "1",
        POTLUCK_OLLAMA_PORT: "0",
      },
      [],
    );
    engine = new LlamaEngine(testEngineOptions);
    const models = [
      { id: "poisoned", path: headless, testModel: false },
      { id: good, path: tinyModelPath(), testModel: true },
    ];
    service = await startSidecarService(config, {
      engine,
      identity: newIdentity("home1"),
      directory: noPeers,
      models,
      memory: null,
      diagnostics: null,
      nats: null,
      usage: recordingUsage(),
      version: "test",
    });
    await service.warm;
    served = await serveApp(service.app, { port: 0, hostname: "127.0.0.1" });
  }, 180_000);
  afterAll(async () => {
    await served?.close();
    await service?.close();
    await engine?.close();
  });

  it("stays up, lists the file as failed with the reason, and serves the good model", async () => {
    const base = `http://127.0.0.1:${served.port}`;
    const models = (await (await fetch(`${base}/v1/models`)).json()) as {
      data: Array<{ id: string; potluck: { state: string; reason?: string } }>;
    };
    // Models load on first use: the poisoned file is available until a request loads it.
    expect(models.data.find((m) => m.id === "poisoned")?.potluck.state).toBe("available");
    const chat = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: good, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    });
    expect(chat.status).toBe(200);
    const refused = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "poisoned", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    });
    expect(refused.status).toBe(503);
    expect(JSON.stringify(await refused.json())).toMatch(/poisoned/);
    const after = (await (await fetch(`${base}/v1/models`)).json()) as typeof models;
    const poisoned = after.data.find((m) => m.id === "poisoned");
    expect(poisoned?.potluck.state).toBe("failed");
    expect(poisoned?.potluck.reason).toMatch(/probe process crashed|GGML_ASSERT/);
  });
});
