import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serve, type ServerType } from "@hono/node-server";
import { MemoryStatus } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadSidecarConfig } from "../src/config.js";
import { noPeers } from "../src/peer/directory.js";
import { startSidecarService, type SidecarService } from "../src/service.js";
import { buildFakeStores, type FakeStores } from "./discovery-stores.js";
import { newIdentity, recordingUsage } from "./harness.js";

// The real sidecar (discovery, LlamaEngine, memory) over fake stores in a fake HOME: it starts,
// stays up with broken files among the models, lists everything with its state and reason,
// answers a chat on an Ollama model by name:tag, and memory offers the embedding models found.
const repoRoot = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const scratch = mkdtempSync(join(tmpdir(), "potluck-discovery-sidecar-"));
let stores: FakeStores;

interface Running {
  url: string;
  port: number;
  service: SidecarService;
  close(): Promise<void>;
}

async function start(dataDir: string, env: Record<string, string> = {}): Promise<Running> {
  const config = loadSidecarConfig(
    {
      POTLUCK_MACHINE: "linux",
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_BIND: "127.0.0.1",
      POTLUCK_CPU_PIN: "off",
      POTLUCK_THREADS: "1",
      OLLAMA_MODELS: stores.ollamaRoot,
      ...env,
    },
    [],
  );
  const service = await startSidecarService(config, {
    identity: newIdentity("linux"),
    directory: noPeers,
    diagnostics: null,
    version: "test",
    nats: null,
    usage: recordingUsage(),
  });
  await service.warm;
  const server = await new Promise<ServerType>((done) => {
    const s = serve({ fetch: service.app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    service,
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      await service.close();
    },
  };
}

beforeAll(() => {
  stores = buildFakeStores(join(scratch, "home"));
  // LM Studio and the Hugging Face cache are found under HOME (os.homedir() reads it).
  vi.stubEnv("HOME", stores.home);
});
afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(scratch, { recursive: true, force: true });
});

interface ListedModel {
  id: string;
  potluck: { state: string; reason?: string };
}

describe("a sidecar over the stores a household has", () => {
  let sidecar: Running;
  const dataDir = join(scratch, "data");
  beforeAll(async () => {
    sidecar = await start(dataDir);
  }, 120_000);
  afterAll(async () => sidecar?.close());

  it("stays up and lists every model with its state, and the reason for each it cannot serve", async () => {
    expect((await (await fetch(`${sidecar.url}/health`)).json()) as unknown).toMatchObject({ status: "ok" });
    const listed = ((await (await fetch(`${sidecar.url}/v1/models`)).json()) as { data: ListedModel[] }).data;
    const states = Object.fromEntries(listed.map((m) => [m.id, m.potluck.state]));
    // Nothing loads at start (each model loads on its first request); what discovery could not
    // serve is failed, with its reason, from the start.
    expect(states).toEqual({
      "tinychat:latest": "available",
      "someone/embedder:v1": "available",
      "hf.co/org/gone:Q4_K_M": "failed",
      "chat-q8": "available",
      "embed-llama": "available",
      "old-chat": "available",
      "chat-q8@huggingface": "available",
      "no-heads": "failed",
      partial: "failed",
      "split-model": "available",
      truncated: "failed",
    });
    const reason = (id: string) => listed.find((m) => m.id === id)?.potluck.reason;
    expect(reason("hf.co/org/gone:Q4_K_M")).toMatch(/blob .* is missing/);
    expect(reason("no-heads")).toMatch(/lacks required GGUF metadata \(llama\.attention\.head_count\)/);
    expect(reason("partial")).toMatch(/partial-00002-of-00003\.gguf missing/);
    expect(reason("truncated")).toMatch(/^truncated: /);
    // The engine's own list carries what discovery found (kind, store, size).
    expect(sidecar.service.engine.state("someone/embedder:v1")).toMatchObject({ kind: "embedding", source: "ollama" });
    expect(sidecar.service.engine.state("split-model")).toMatchObject({ source: "huggingface", kind: "chat" });
    expect(sidecar.service.engine.state("split-model")?.sizeBytes).toBeGreaterThan(100_000);
  });

  it("answers a chat on a discovered Ollama model by name:tag, and on a split model", async () => {
    for (const model of ["tinychat:latest", "split-model"]) {
      const res = await fetch(`${sidecar.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: "user", content: "hello" }] }),
      });
      expect(res.status, model).toBe(200);
      const body = (await res.json()) as { model: string; choices: { message: { content: string } }[] };
      expect(body.model).toBe(model);
      expect(body.choices[0]?.message.content.length).toBeGreaterThan(0);
    }
  });

  it("offers the embedding models it found in memory status, with the exact setting, through the real CLI", async () => {
    const status = MemoryStatus.parse(await (await fetch(`${sidecar.url}/memory/status`)).json());
    expect(status.embedder.id).toMatch(/^lexical/);
    expect(status.embedderOffers?.map((o) => [o.model, o.setting])).toEqual([
      ["someone/embedder:v1", `POTLUCK_EMBED_MODEL=${stores.paths.ollamaEmbed}`],
      ["embed-llama", `POTLUCK_EMBED_MODEL=${stores.paths.lmEmbed}`],
    ]);
    const cli = await potluck("memory", "status", "--port", String(sidecar.port));
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain("embedding model found: embed-llama (lmstudio)");
    expect(cli.stdout).toContain(`  POTLUCK_EMBED_MODEL=${stores.paths.lmEmbed}\n`);
  });
});

describe("memory after taking the offer", () => {
  it("embeds with the offered model, lists no offer, and never searches the old embedder's vectors", async () => {
    const dataDir = join(scratch, "switch");
    // Both configured (quicker than every store): the embedding model among them is what is offered.
    const models = `${stores.paths.lmChat},${stores.paths.lmEmbed}`;
    const first = await start(dataDir, { POTLUCK_MODELS: models });
    try {
      const wrote = await fetch(`${first.url}/memory`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "the spare key is under the blue pot", project: "home" }),
      });
      expect(wrote.status).toBe(201);
      const before = MemoryStatus.parse(await (await fetch(`${first.url}/memory/status`)).json());
      expect(before.embedderOffers?.map((o) => o.model)).toEqual(["embed-llama"]);
    } finally {
      await first.close();
    }
    const second = await start(dataDir, { POTLUCK_MODELS: models, POTLUCK_EMBED_MODEL: stores.paths.lmEmbed! });
    try {
      const status = MemoryStatus.parse(await (await fetch(`${second.url}/memory/status`)).json());
      expect(status.embedder.id).toMatch(/^gguf:embed-llama\.gguf:/);
      expect(status.embedderOffers).toBeUndefined();
      expect(status.foreign).toEqual([{ embedderId: expect.stringMatching(/^lexical/), records: 1 }]);
      const search = await fetch(`${second.url}/memory/search`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "the spare key is under the blue pot", project: "home" }),
      });
      expect(((await search.json()) as { hits: unknown[] }).hits).toEqual([]);
    } finally {
      await second.close();
    }
  }, 180_000);
});

function potluck(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [join(repoRoot, "bin", "potluck.mjs"), ...args],
      { cwd: repoRoot, timeout: 60_000, encoding: "utf8" },
      (error, stdout, stderr) =>
        done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }),
    );
  });
}
