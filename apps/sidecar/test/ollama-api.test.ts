import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateRequest } from "../src/inference/engine.js";
import type { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine } from "./fixtures.js";
import { newIdentity, recordingEngine, startSidecar, type RunningSidecar } from "./harness.js";

// The official `ollama` client, unchanged, against a real listening sidecar on the tiny test model
// (random weights: the text is gibberish, its shape is what is checked). The engine is wrapped only
// to record what reached it, so the translation is checked at the engine's own boundary.
let engine: LlamaEngine;
let model: string;
let sidecar: RunningSidecar;
let client: Ollama;
const seen: GenerateRequest[] = [];

beforeAll(async () => {
  ({ engine, id: model } = await readyTinyEngine());
  sidecar = await startSidecar({ machine: "mac", engine: recordingEngine(engine, seen), identity: newIdentity("mac") });
  client = new Ollama({ host: sidecar.url });
});
afterAll(async () => {
  await sidecar?.close();
  await engine?.close();
});

const user = (content: string) => [{ role: "user", content }];

describe("Ollama's API with the official ollama client", () => {
  it("streams a chat whose last line is done with Ollama's counts and Potluck's footer", async () => {
    const stream = await client.chat({ model, messages: user("Hello!"), stream: true, options: { num_predict: 12 } });
    let text = "";
    let last: Record<string, unknown> = {};
    let lines = 0;
    for await (const part of stream) {
      text += part.message.content;
      last = part as unknown as Record<string, unknown>;
      lines += 1;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(lines).toBeGreaterThan(1);
    expect(last).toMatchObject({
      model,
      done: true,
      done_reason: "length",
      eval_count: 12,
      served_by: "mac",
      potluck: { served_by: "mac", route: "local", test_model: true },
    });
    expect(last.prompt_eval_count).toBeGreaterThan(3);
    expect(last.total_duration).toBeGreaterThan(0);
    expect(last.eval_duration).toBeGreaterThan(0);
    // Ollama's defaults reached the engine, since the client set none.
    expect(seen.at(-1)).toMatchObject({ maxTokens: 12, temperature: 0.8, topP: 0.9, topK: 40, repeatPenalty: 1.1 });
  });

  it("answers a chat with stream:false in one object", async () => {
    const reply = await client.chat({
      model,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
      ],
      options: { num_predict: 6, temperature: 0, seed: 7, stop: ["\n\n"], top_k: 5, num_ctx: 4096 },
    });
    expect(reply.done).toBe(true);
    expect(reply.message.role).toBe("assistant");
    expect(reply.message.content.length).toBeGreaterThan(0);
    expect(reply.eval_count).toBeLessThanOrEqual(6);
    expect(seen.at(-1)).toMatchObject({ temperature: 0, seed: 7, stop: ["\n\n"], topK: 5, maxTokens: 6 });
  });

  it("generates from a prompt, streamed and not", async () => {
    const single = await client.generate({ model, prompt: "Once upon a time", options: { num_predict: 5 } });
    expect(single).toMatchObject({ model, done: true, done_reason: "length", eval_count: 5 });
    expect(single.response?.length).toBeGreaterThan(0);
    let text = "";
    const stream = await client.generate({
      model,
      prompt: "Hi",
      system: "Be brief.",
      stream: true,
      options: { num_predict: 5 },
    });
    for await (const part of stream) text += part.response;
    expect(text.length).toBeGreaterThan(0);
    expect(seen.at(-1)?.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
  });

  it("embeds with /api/embed (unit vectors) and the older /api/embeddings", async () => {
    const { embeddings } = await client.embed({ model, input: ["the grey drive", "the blue drive"] });
    expect(embeddings).toHaveLength(2);
    const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (const v of embeddings) expect(norm(v)).toBeCloseTo(1, 5);
    const cut = await client.embed({ model, input: "the grey drive", dimensions: 8 });
    expect(cut.embeddings[0]).toHaveLength(8);
    expect(norm(cut.embeddings[0]!)).toBeCloseTo(1, 5);
    const res = await fetch(`${sidecar.url}/api/embeddings`, {
      method: "POST",
      body: JSON.stringify({ model, prompt: "the grey drive" }),
    });
    const { embedding } = (await res.json()) as { embedding: number[] };
    expect(embedding).toHaveLength(embeddings[0]!.length);
    // The same direction as /api/embed's vector, not normalized.
    const dot = embedding.reduce((s, x, i) => s + x * embeddings[0]![i]!, 0);
    expect(dot / norm(embedding)).toBeCloseTo(1, 4);
    expect((await client.embeddings({ model, prompt: "x" })).embedding.length).toBe(embedding.length);
  });

  it("lists models, shows one, reports the loaded ones and its version", async () => {
    const { models } = await client.list();
    expect(models.map((m) => m.name)).toEqual([model]);
    expect(models[0]).toMatchObject({ model, details: { format: "gguf" } });
    expect(models[0]!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(Number.isNaN(Date.parse(String(models[0]!.modified_at)))).toBe(false);
    const ps = await client.ps();
    expect(ps.models.map((m) => m.name)).toEqual([model]);
    expect(Number.isNaN(Date.parse(String(ps.models[0]!.expires_at)))).toBe(false);
    const show = await client.show({ model: `${model}:latest` });
    expect(show.capabilities).toEqual(["completion", "tools"]);
    expect(show.modelfile).toContain(`FROM ${model}`);
    expect(show.details.format).toBe("gguf");
    expect((await client.version()).version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("honours format with a JSON schema (needs the engine's grammar support)", async () => {
    const schema = {
      type: "object",
      properties: { age: { type: "integer" }, available: { type: "boolean" } },
      required: ["age", "available"],
    };
    const reply = await client.chat({
      model,
      messages: user("Ollama is 22 years old and busy saving the world. Respond using JSON."),
      format: schema,
      options: { temperature: 0, num_predict: 64 },
    });
    expect(seen.at(-1)?.responseFormat).toEqual({ type: "json_schema", schema });
    const parsed = JSON.parse(reply.message.content) as { age: unknown; available: unknown };
    expect(Number.isInteger(parsed.age)).toBe(true);
    expect(typeof parsed.available).toBe("boolean");
  });

  it("carries tools and a tool round trip to the engine, and any call comes back well formed", async () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "The weather in a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const reply = await client.chat({
      model,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
        },
        { role: "tool", content: "sunny, 21C", tool_name: "get_weather" },
      ],
      tools,
      options: { num_predict: 16, temperature: 0 },
    });
    const request = seen.at(-1)!;
    expect(request.tools).toEqual([tools[0]!.function]);
    expect(request.messages[1]).toEqual({
      role: "assistant",
      content: "",
      toolCalls: [{ id: "call_1_0", name: "get_weather", arguments: '{"city":"Paris"}' }],
    });
    expect(request.messages[2]).toEqual({
      role: "tool",
      content: "sunny, 21C",
      toolCallId: "call_1_0",
      name: "get_weather",
    });
    expect(reply.done).toBe(true);
    for (const call of reply.message.tool_calls ?? []) {
      expect(call.function.name).toBe("get_weather");
      expect(typeof call.function.arguments.city).toBe("string");
    }
  });

  it("passes keep_alive on in milliseconds", async () => {
    for (const [keepAlive, ms] of [
      ["1h30m", 5_400_000],
      [300, 300_000],
      [-1, -1],
      ["5m", 300_000],
    ] as const) {
      await client.generate({ model, prompt: "Hi", keep_alive: keepAlive, options: { num_predict: 1 } });
      expect(seen.at(-1)?.keepAliveMs, String(keepAlive)).toBe(ms);
    }
  });

  it("answers errors as Ollama does: 404 for an unknown model, 400 naming the field", async () => {
    const missing = await client.chat({ model: "no-such-model", messages: user("x") }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ status_code: 404 });
    expect((missing as Error).message).toMatch(/^model "no-such-model" not found, try pulling it first/);
    const bad = await client
      .chat({ model, messages: user("x"), options: { mirostat: 2 } })
      .catch((e: unknown) => e as Error & { status_code: number });
    expect(bad).toMatchObject({ status_code: 400 });
    expect((bad as Error).message).toMatch(/^options\.mirostat: only 0 is accepted/);
    // Pulling is wired to Potluck's puller, which fetches GGUF files by URL or hf: reference, not
    // from Ollama's registry: a bare registry name is a 400 saying what it takes.
    const pull = await client.pull({ model: "llama3.2" }).catch((e: unknown) => e);
    expect(pull).toMatchObject({ status_code: 400 });
    expect((pull as Error).message).toMatch(/llama3\.2.*(https|hf:)/s);
  });

  it("loads with no messages, and unloads with keep_alive 0 (last: the model leaves memory)", async () => {
    const load = await client.chat({ model, messages: [] });
    expect(load).toMatchObject({ done: true, done_reason: "load" });
    const unload = await client.generate({ model, prompt: "", keep_alive: 0 });
    expect(unload).toMatchObject({ done: true, done_reason: "unload" });
    expect((await client.ps()).models).toEqual([]);
  });
});

/** A port nobody listens on now (the kernel's pick, released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function recordingLog() {
  const lines: string[] = [];
  const add = (a: unknown, b?: unknown) => void lines.push(typeof a === "string" ? a : String(b ?? ""));
  return { lines, info: add, warn: add, error: add };
}

describe("POTLUCK_OLLAMA_PORT: Ollama's API on a loopback port of its own", () => {
  let tiny: LlamaEngine;
  let id: string;
  beforeAll(async () => {
    ({ engine: tiny, id } = await readyTinyEngine());
  });
  afterAll(async () => {
    await tiny?.close();
  });

  it("serves only the Ollama API there, behind the loopback guard", async () => {
    const port = await freePort();
    const side = await startSidecar({ machine: "mac", engine: tiny, identity: newIdentity("mac"), ollamaPort: port });
    try {
      expect(side.service.ollamaPort).toBe(port);
      const base = `http://127.0.0.1:${port}`;
      const ollama = new Ollama({ host: base });
      expect((await ollama.list()).models.map((m) => m.name)).toEqual([id]);
      const reply = await ollama.generate({ model: id, prompt: "Hi", options: { num_predict: 3 } });
      expect(reply).toMatchObject({ done: true, eval_count: 3, served_by: "mac" });
      expect(await (await fetch(base)).text()).toBe("Ollama is running");
      expect((await fetch(`${base}/health`)).status).toBe(404);
      // A DNS-rebinding page reaches loopback under its own name (fetch will not set Host, node:http will).
      const rebound = await rawGet(port, "/api/tags", { host: `evil.example:${port}` });
      expect(rebound.status).toBe(403);
      expect((JSON.parse(rebound.body) as { error: string }).error).toMatch(/loopback names only/);
    } finally {
      await side.close();
    }
    // Closed with the sidecar: the port is free again.
    await expect(fetch(`http://127.0.0.1:${port}/api/version`)).rejects.toThrow();
  });

  it("binds nothing more when POTLUCK_OLLAMA_PORT is the sidecar's own port", async () => {
    const log = recordingLog();
    // The harness leaves POTLUCK_PORT at its default, 8321 (it listens on a port of its own).
    const side = await startSidecar({
      machine: "mac",
      engine: tiny,
      identity: newIdentity("mac"),
      ollamaPort: 8321,
      log,
    });
    try {
      expect(side.service.ollamaPort).toBeUndefined();
      expect(log.lines).toContain(
        "POTLUCK_OLLAMA_PORT is the sidecar's own port 8321, which serves Ollama's API already",
      );
    } finally {
      await side.close();
    }
  });

  it("leaves a running Ollama be and says where Potluck's API is instead", async () => {
    const ollama = await listen((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(req.url === "/api/version" ? JSON.stringify({ version: "0.5.7" }) : "{}");
    });
    const other = await listen((_req, res) => {
      res.statusCode = 404;
      res.end("not found");
    });
    try {
      for (const [port, expected] of [
        [
          ollama.port,
          `Ollama is already running on 127.0.0.1:${ollama.port}; Potluck's Ollama API stays on its own port`,
        ],
        [
          other.port,
          `127.0.0.1:${other.port} is taken by another program (it answered GET /api/version with HTTP 404)`,
        ],
      ] as const) {
        const log = recordingLog();
        const side = await startSidecar({
          machine: "mac",
          engine: tiny,
          identity: newIdentity("mac"),
          ollamaPort: port,
          log,
        });
        try {
          expect(side.service.ollamaPort).toBeUndefined();
          expect(
            log.lines.find((l) => l.startsWith(expected)),
            log.lines.join("\n"),
          ).toMatch(/OLLAMA_HOST=http:\/\/127\.0\.0\.1:\d+$/);
          // The sidecar's own port still serves the Ollama API.
          expect((await new Ollama({ host: side.url }).list()).models).toHaveLength(1);
        } finally {
          await side.close();
        }
      }
    } finally {
      ollama.server.close();
      other.server.close();
    }
  });
});
