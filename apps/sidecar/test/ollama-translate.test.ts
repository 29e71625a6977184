import { keepAliveMs, PotluckHttpError } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { noRoute } from "../src/routing/router.js";
import { chatMessages, generationOptions, resolveModelName } from "../src/routes/ollama/translate.js";
import { parameterSize } from "../src/routes/ollama/models.js";
import { done, fakeModel, fakeSidecar, lines } from "./ollama-fakes.js";

// The Ollama routes over a faked engine and router: the translation to and from Potluck's
// generation contract, with every scripted chunk kind. ollama-api.test.ts runs the real thing.

describe("Ollama's fields translated to the generation contract", () => {
  it("turns keep_alive numbers and Go durations into milliseconds", () => {
    expect(keepAliveMs("5m")).toBe(300_000);
    expect(keepAliveMs("1h30m")).toBe(5_400_000);
    expect(keepAliveMs("1.5h")).toBe(5_400_000);
    expect(keepAliveMs("300ms")).toBe(300);
    expect(keepAliveMs("2h45m10s")).toBe(9_910_000);
    expect(keepAliveMs(300)).toBe(300_000);
    expect(keepAliveMs("300")).toBe(300_000);
    expect(keepAliveMs(-1)).toBe(-1);
    expect(keepAliveMs("-1")).toBe(-1);
    expect(keepAliveMs("-5m")).toBe(-1);
    expect(keepAliveMs(0)).toBe(0);
    expect(keepAliveMs("0")).toBe(0);
    expect(keepAliveMs("0s")).toBe(0);
    expect(keepAliveMs("1ns")).toBe(1);
    expect(keepAliveMs("soon")).toBeUndefined();
    expect(keepAliveMs("5 m")).toBeUndefined();
    expect(keepAliveMs("")).toBeUndefined();
  });

  it("fills Ollama's defaults and maps every honoured option", () => {
    expect(generationOptions(undefined, undefined, undefined)).toEqual({
      temperature: 0.8,
      topP: 0.9,
      topK: 40,
      repeatPenalty: 1.1,
    });
    expect(
      generationOptions(
        {
          num_predict: 12,
          temperature: 0,
          top_p: 0.5,
          top_k: 3,
          seed: 42,
          stop: "\n",
          repeat_penalty: 1,
          presence_penalty: 0.5,
          frequency_penalty: -0.5,
          num_ctx: 8192,
          num_thread: 4,
        },
        { type: "object", properties: { a: { type: "string" } } },
        "10m",
      ),
    ).toEqual({
      maxTokens: 12,
      temperature: 0,
      topP: 0.5,
      topK: 3,
      seed: 42,
      stop: ["\n"],
      repeatPenalty: 1,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      responseFormat: { type: "json_schema", schema: { type: "object", properties: { a: { type: "string" } } } },
      keepAliveMs: 600_000,
    });
    // -1 and -2 are "no limit"; seed -1 is "random"; "json" is any JSON object.
    const open = generationOptions({ num_predict: -1, seed: -1 }, "json", -1);
    expect(open).toMatchObject({ responseFormat: { type: "json_object" }, keepAliveMs: -1 });
    expect(open).not.toHaveProperty("maxTokens");
    expect(open).not.toHaveProperty("seed");
    expect(generationOptions({ num_predict: -2 }, "", 0)).toMatchObject({ keepAliveMs: 0 });
  });

  it("gives assistant calls ids and pairs each tool answer with its call", () => {
    const messages = chatMessages([
      { role: "user", content: "weather in Paris and Oslo?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { function: { name: "weather", arguments: { city: "Paris" } } },
          { function: { name: "time", arguments: { city: "Oslo" } } },
        ],
      },
      { role: "tool", content: "14:00", tool_name: "time" },
      { role: "tool", content: "sunny" },
    ]);
    expect(messages[1]).toEqual({
      role: "assistant",
      content: "",
      toolCalls: [
        { id: "call_1_0", name: "weather", arguments: '{"city":"Paris"}' },
        { id: "call_1_1", name: "time", arguments: '{"city":"Oslo"}' },
      ],
    });
    expect(messages[2]).toEqual({ role: "tool", content: "14:00", toolCallId: "call_1_1", name: "time" });
    expect(messages[3]).toEqual({ role: "tool", content: "sunny", toolCallId: "call_1_0", name: "weather" });
  });

  it("finds a model listed without a tag under Ollama's default tag", () => {
    const known = (id: string) => id === "tiny";
    expect(resolveModelName("tiny:latest", known)).toBe("tiny");
    expect(resolveModelName("tiny", known)).toBe("tiny");
    expect(resolveModelName("other:latest", known)).toBe("other:latest");
    expect(parameterSize(8_030_261_248)).toBe("8.0B");
    expect(parameterSize(1_234_567)).toBe("1.2M");
    expect(parameterSize(999)).toBe("999");
  });
});

describe("Ollama routes over a faked engine", () => {
  it("streams NDJSON: no loading lines, tool calls as message.tool_calls, the footer last", async () => {
    const sidecar = fakeSidecar({
      reply: () => [
        { type: "loading", model: "fake", progress: 0.5 },
        { type: "token", text: "Let me look." },
        { type: "tool_call", call: { id: "c1", name: "weather", arguments: '{"city":"Paris"}' } },
        done("tool_calls"),
      ],
    });
    const res = await sidecar.post("/api/chat", {
      model: "fake",
      messages: [{ role: "user", content: "weather?" }],
      tools: [{ type: "function", function: { name: "weather", parameters: { type: "object" } } }],
    });
    expect(res.status).toBe(200);
    const [text, call, last, ...rest] = lines(res.text);
    expect(rest).toEqual([]);
    expect(text).toMatchObject({ model: "fake", message: { role: "assistant", content: "Let me look." }, done: false });
    expect(call).toMatchObject({
      message: { content: "", tool_calls: [{ function: { name: "weather", arguments: { city: "Paris" } } }] },
      done: false,
    });
    expect(last).toMatchObject({
      done: true,
      done_reason: "stop",
      prompt_eval_count: 7,
      eval_count: 3,
      served_by: "mac",
      potluck: { served_by: "mac", route: "local", owner: "home", test_model: true },
    });
    // Nanoseconds as whole numbers; the fake's chunks arrive together, so only the total is surely above 0.
    for (const key of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"])
      expect(Number.isInteger(last[key]) && last[key] >= 0, key).toBe(true);
    expect(last.total_duration).toBeGreaterThan(0);
    expect(sidecar.jobs[0]?.tools).toEqual([{ name: "weather", parameters: { type: "object" } }]);
  });

  it("answers stream:false with one object holding the text and the calls", async () => {
    const sidecar = fakeSidecar({
      reply: () => [
        { type: "token", text: "a" },
        { type: "token", text: "b" },
        { type: "tool_call", call: { id: "c1", name: "f", arguments: "{}" } },
        done("tool_calls"),
      ],
    });
    const res = await sidecar.post("/api/chat", {
      model: "fake:latest",
      messages: [{ role: "user", content: "x" }],
      stream: false,
    });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({
      model: "fake:latest",
      message: { role: "assistant", content: "ab", tool_calls: [{ function: { name: "f", arguments: {} } }] },
      done: true,
    });
    expect(sidecar.jobs[0]?.model).toBe("fake");
  });

  it("runs /api/generate as a system and a user turn, the text in `response`", async () => {
    const sidecar = fakeSidecar();
    const res = await sidecar.post("/api/generate", {
      model: "fake",
      prompt: "Hi",
      system: "Be brief.",
      stream: false,
    });
    expect(res.json()).toMatchObject({ response: "Hi there", done: true, done_reason: "stop" });
    expect(sidecar.jobs[0]?.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
  });

  it("says which layer failed when nothing can serve, in Ollama's error shape", async () => {
    const sidecar = fakeSidecar({
      plan: async (model) => {
        throw noRoute(model, [
          {
            machine: "linux",
            relation: "own",
            layer: "data-plane",
            reason: { kind: "call_failed", text: "no answer within 2s" },
          },
        ]);
      },
    });
    const res = await sidecar.post("/api/chat", { model: "fake", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({
      error: "no machine can serve model fake right now: linux (own): data-plane — no answer within 2s",
    });
  });

  it("answers Ollama's 404 sentence for a model no machine has", async () => {
    const res = await fakeSidecar().post("/api/generate", { model: "nope", prompt: "x" });
    expect(res.status).toBe(404);
    expect(res.json().error).toMatch(/^model "nope" not found, try pulling it first/);
  });

  it("turns a refusal before the first token into an HTTP status, and a later one into an error line", async () => {
    const refused = fakeSidecar({
      reply: () => [{ type: "error", code: "queue_full", message: "model fake is busy", layer: "model-runtime" }],
    });
    const first = await refused.post("/api/chat", { model: "fake", messages: [{ role: "user", content: "x" }] });
    expect(first.status).toBe(502);
    expect(first.json()).toEqual({ error: "model-runtime: model fake is busy" });
    const cut = fakeSidecar({
      reply: () => [
        { type: "token", text: "a" },
        { type: "error", code: "peer_failed", message: "linux went away", layer: "data-plane" },
      ],
    });
    const res = await cut.post("/api/chat", { model: "fake", messages: [{ role: "user", content: "x" }] });
    expect(lines(res.text).at(-1)).toEqual({ error: "data-plane: linux went away" });
  });

  it("loads with no messages and unloads with keep_alive 0, running nothing", async () => {
    const sidecar = fakeSidecar();
    const load = await sidecar.post("/api/chat", { model: "fake", messages: [], stream: false });
    expect(load.json()).toMatchObject({ done: true, done_reason: "load", message: { content: "" } });
    const unload = await sidecar.post("/api/generate", { model: "fake", keep_alive: 0 });
    expect(lines(unload.text)).toMatchObject([{ done: true, done_reason: "unload", response: "" }]);
    expect(sidecar.unloaded).toEqual(["fake"]);
    expect(sidecar.jobs).toEqual([]);
  });

  it("lists, shows and reports loaded models from ModelInfo", async () => {
    const { app } = fakeSidecar();
    const tags = await (await app.request("/api/tags")).json();
    expect(tags.models).toEqual([
      expect.objectContaining({
        name: "fake",
        model: "fake",
        size: 4_096,
        modified_at: "2026-01-02T03:04:05.000Z",
        digest: expect.stringMatching(/^[0-9a-f]{64}$/),
        details: {
          parent_model: "",
          format: "gguf",
          family: "llama",
          families: ["llama"],
          parameter_size: "1.2M",
          quantization_level: "F32",
        },
      }),
    ]);
    const ps = await (await app.request("/api/ps")).json();
    expect(ps.models[0]).toMatchObject({ size: 8_192, size_vram: 0, expires_at: "2026-01-02T04:04:05.000Z" });
    const show = await app.request("/api/show", { method: "POST", body: JSON.stringify({ name: "fake" }) });
    expect(await show.json()).toMatchObject({
      capabilities: ["completion", "tools"],
      model_info: {
        "general.architecture": "llama",
        "general.parameter_count": 1_234_567,
        "llama.context_length": 2048,
      },
    });
  });

  it("embeds with unit-length vectors, cut to `dimensions`, and the older endpoint's raw vector", async () => {
    const sidecar = fakeSidecar();
    const embed = await sidecar.post("/api/embed", { model: "fake", input: ["a", "b"], dimensions: 2 });
    expect(embed.json()).toMatchObject({
      embeddings: [
        [0.6, 0.8],
        [0.6, 0.8],
      ],
      prompt_eval_count: 4,
    });
    const wide = await sidecar.post("/api/embed", { model: "fake", input: "a", dimensions: 4 });
    expect(wide.status).toBe(400);
    expect(wide.json().error).toMatch(/^dimensions: at most 3/);
    expect((await sidecar.post("/api/embeddings", { model: "fake", prompt: "a" })).json()).toEqual({
      embedding: [3, 4, 0],
    });
  });

  it("reads a body whatever its Content-Type says (curl -d sends form encoding)", async () => {
    const { app } = fakeSidecar();
    const res = await app.request("/api/generate", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: JSON.stringify({ model: "fake", prompt: "Hi", stream: false }),
    });
    expect(res.status).toBe(200);
    const bad = await app.request("/api/generate", { method: "POST", body: "{not json" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^body: not JSON/);
  });
});

describe("/api/pull through an injected ModelPuller", () => {
  it("answers 501 in Ollama's shape when the sidecar has no puller", async () => {
    const res = await fakeSidecar().post("/api/pull", { model: "llama3.2" });
    expect(res.status).toBe(501);
    expect(res.json().error).toMatch(/pulling models is not available on this sidecar/);
  });

  it("streams progress, the latest count per status when the client lags, then success", async () => {
    const sidecar = fakeSidecar({
      puller: {
        async pull(ref, onProgress) {
          onProgress({ status: "pulling manifest" });
          for (let completed = 0; completed <= 1000; completed += 100)
            onProgress({ status: `downloading ${ref}`, total: 1000, completed });
          onProgress({ status: "verifying sha256 digest" });
          return { id: "llama3.2-q4" };
        },
      },
    });
    const res = await sidecar.post("/api/pull", { model: "llama3.2" });
    expect(res.status).toBe(200);
    const got = lines(res.text);
    expect(got[0]).toEqual({ status: "pulling manifest" });
    expect(got.at(-1)).toEqual({ status: "success", model: "llama3.2-q4" });
    const downloads = got.filter((l) => String(l.status).startsWith("downloading"));
    expect(downloads.length).toBeGreaterThan(0);
    expect(downloads.at(-1)).toEqual({ status: "downloading llama3.2", total: 1000, completed: 1000 });
    const single = await sidecar.post("/api/pull", { name: "llama3.2", stream: false });
    expect(single.json()).toEqual({ status: "success", model: "llama3.2-q4" });
  });

  it("answers a reference the puller refuses at once with its status, a later failure as an error line", async () => {
    const refusing = fakeSidecar({
      puller: {
        pull: async () => {
          throw Object.assign(new Error("no such model in the registry"), { status: 404 });
        },
      },
    });
    const refused = await refusing.post("/api/pull", { model: "nope" });
    expect(refused.status).toBe(404);
    expect(refused.json()).toEqual({ error: "pulling nope: no such model in the registry" });
    const failing = fakeSidecar({
      puller: {
        async pull(_ref, onProgress) {
          onProgress({ status: "pulling manifest" });
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw new Error("connection reset");
        },
      },
    });
    const res = await failing.post("/api/pull", { model: "x" });
    expect(res.status).toBe(200);
    expect(lines(res.text)).toEqual([{ status: "pulling manifest" }, { error: "pulling x: connection reset" }]);
  });
});

describe("refusals name the field", () => {
  it.each([
    [{ options: { min_p: 0.2 } }, "options.min_p"],
    [{ options: { mirostat: 2 } }, "options.mirostat"],
    [{ options: { temperature: 3 } }, "options.temperature"],
    [{ options: { bogus: 1 } }, "options.bogus"],
    [{ format: "xml" }, "format"],
    [{ keep_alive: "soon" }, "keep_alive"],
    [{ think: true }, "think"],
    [{ messages: [{ role: "wizard", content: "x" }] }, "messages.0.role"],
    [{ messages: [{ role: "user", content: "x", images: ["aGk="] }] }, "messages.0.images"],
    [{ tools: [{ type: "web", function: { name: "f" } }] }, "tools.0.type"],
    [{ surprise: true }, "surprise"],
  ])("refuses %j naming %s", async (patch, field) => {
    const res = await fakeSidecar().post("/api/chat", {
      model: "fake",
      messages: [{ role: "user", content: "x" }],
      ...patch,
    });
    expect(res.status).toBe(400);
    expect(res.json().error.startsWith(`${field}: `)).toBe(true);
  });

  it("refuses what /api/generate cannot honour", async () => {
    for (const [patch, field] of [
      [{ raw: true }, "raw"],
      [{ suffix: "return x" }, "suffix"],
      [{ template: "{{ .Prompt }}" }, "template"],
      [{ context: [1, 2, 3] }, "context"],
    ] as const) {
      const res = await fakeSidecar().post("/api/generate", { model: "fake", prompt: "x", ...patch });
      expect(res.status, field).toBe(400);
      expect(res.json().error.startsWith(`${field}: `), res.text).toBe(true);
    }
  });

  it("accepts options that change nothing here, and nulls as absent", async () => {
    const sidecar = fakeSidecar();
    const res = await sidecar.post("/api/chat", {
      model: "fake",
      messages: [{ role: "user", content: "x", images: null }],
      options: { num_ctx: 8192, num_gpu: 99, use_mmap: true, min_p: 0, mirostat: 0, tfs_z: 1, typical_p: 1 },
      format: null,
      think: false,
      stream: false,
    });
    expect(res.status, res.text).toBe(200);
    expect(fakeModel.id).toBe("fake");
  });

  it("maps a thrown PotluckHttpError's status through unchanged", async () => {
    const sidecar = fakeSidecar({
      plan: async () => {
        throw new PotluckHttpError(409, "conflict", "busy elsewhere");
      },
    });
    const res = await sidecar.post("/api/chat", { model: "fake", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(409);
    expect(res.json()).toEqual({ error: "busy elsewhere" });
  });
});
