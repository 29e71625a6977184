import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateRequest } from "../src/inference/engine.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine, testEngineOptions } from "./fixtures.js";
import {
  directoryFor,
  newIdentity,
  recordingEngine,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// The official `openai` client, unchanged, against real listening sidecars on the tiny model:
// "solo" serves its own model; "mac" has none and routes to "linux" over signed loopback calls.
let engine: LlamaEngine;
let model: string;
let solo: RunningSidecar;
let client: OpenAI;
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
]);
let mac: RunningSidecar;
let linux: RunningSidecar;
let macEngine: LlamaEngine;
let linuxEngine: LlamaEngine;
/** What linux's engine was asked to run: the routed request as it arrived. */
const arrived: GenerateRequest[] = [];

beforeAll(async () => {
  ({ engine, id: model } = await readyTinyEngine());
  solo = await startSidecar({ machine: "solo", engine, identity: newIdentity("solo") });
  client = new OpenAI({ baseURL: `${solo.url}/v1`, apiKey: "unused-local", maxRetries: 0 });
  const urls = new Map<string, string>();
  linuxEngine = (await readyTinyEngine()).engine;
  macEngine = new LlamaEngine(testEngineOptions);
  linux = await startSidecar({
    machine: "linux",
    engine: recordingEngine(linuxEngine, arrived),
    identity: ids.linux,
    directory: directoryFor(roster.path, "linux", urls),
  });
  mac = await startSidecar({
    machine: "mac",
    engine: macEngine,
    identity: ids.mac,
    directory: directoryFor(roster.path, "mac", urls),
  });
  for (const s of [mac, linux]) urls.set(s.machine, s.url);
});
afterAll(async () => {
  for (const s of [solo, mac, linux]) await s?.close();
  for (const e of [engine, macEngine, linuxEngine]) await e?.close();
  roster.cleanup();
});

const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { enum: ["Paris", "Oslo"] }, metric: { type: "boolean" } },
      required: ["city", "metric"],
      additionalProperties: false,
    },
  },
};
const time = {
  type: "function" as const,
  function: { name: "get_time", parameters: { type: "object", properties: { utc: { type: "boolean" } } } },
};
const answerSchema = {
  type: "object",
  properties: { ok: { type: "boolean" }, color: { enum: ["red", "green", "blue"] } },
  required: ["ok", "color"],
  additionalProperties: false,
};

describe("chat completions with the official client", () => {
  it("streams content parts and developer messages, role first, usage last with include_usage", async () => {
    const stream = await client.chat.completions.create({
      model,
      messages: [
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Hello" },
            { type: "text", text: "there" },
          ],
        },
      ],
      max_tokens: 8,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text.length).toBeGreaterThan(0);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 8 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("length");
  });

  it("answers content parts non-streamed", async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
      max_completion_tokens: 5,
    });
    expect(res.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(res.usage?.completion_tokens).toBe(5);
  });

  it("without max_tokens runs to the end of the context, not to an artificial cap", async () => {
    const res = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Go on" }] });
    // The tiny model never ends a sequence, so it stops where the context (2048) is full.
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage!.prompt_tokens + res.usage!.completion_tokens).toBeGreaterThan(2000);
    expect(res.usage!.prompt_tokens + res.usage!.completion_tokens).toBeLessThanOrEqual(2048);
  });

  it("honours max_tokens above 8,192 up to the context", async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Long" }],
      max_tokens: 100_000,
    });
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage!.prompt_tokens + res.usage!.completion_tokens).toBeLessThanOrEqual(2048);
  });

  it("stops at a stop string and leaves it out", async () => {
    const ask = (stop?: string[]) =>
      client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Say things" }],
        max_tokens: 40,
        temperature: 0,
        ...(stop === undefined ? {} : { stop }),
      });
    const full = (await ask()).choices[0]?.message.content ?? "";
    // A piece of the greedy reply (deterministic): stopping on it must cut the reply before it.
    const cut = full.slice(10, 13);
    const stopped = await ask([cut]);
    expect(stopped.choices[0]?.finish_reason).toBe("stop");
    expect(stopped.choices[0]?.message.content).toBe(full.slice(0, full.indexOf(cut)));
  });

  it("json_schema strict output parses and matches the schema", async () => {
    for (const stream of [false, true]) {
      const body = {
        model,
        messages: [{ role: "user" as const, content: "Answer" }],
        temperature: 1,
        seed: 7,
        response_format: {
          type: "json_schema" as const,
          json_schema: { name: "answer", strict: true, schema: answerSchema },
        },
      };
      let text = "";
      if (stream) {
        for await (const c of await client.chat.completions.create({ ...body, stream: true }))
          text += c.choices[0]?.delta.content ?? "";
      } else text = (await client.chat.completions.create(body)).choices[0]?.message.content ?? "";
      const value = JSON.parse(text) as { ok: unknown; color: unknown };
      expect(typeof value.ok).toBe("boolean");
      expect(["red", "green", "blue"]).toContain(value.color);
      expect(Object.keys(value).sort()).toEqual(["color", "ok"]);
    }
  });

  it("json_object output is JSON", async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "JSON please" }],
      response_format: { type: "json_object" },
      max_tokens: 400,
      temperature: 0,
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
    });
    // A random-weight model may run out of tokens mid-object; only a finished one must parse.
    if (res.choices[0]?.finish_reason === "stop")
      expect(() => JSON.parse(res.choices[0]!.message.content!)).not.toThrow();
    expect(res.choices[0]?.message.content?.trimStart().startsWith("{")).toBe(true);
  });

  it("a tool call round trip: forced by name and by required, then the result answered", async () => {
    const named = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather, time],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const call = named.choices[0]?.message.tool_calls?.[0];
    expect(named.choices[0]?.finish_reason).toBe("tool_calls");
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).toBe("get_weather");
    const args = JSON.parse(call.function.arguments) as { city: string; metric: boolean };
    expect(["Paris", "Oslo"]).toContain(args.city);
    expect(typeof args.metric).toBe("boolean");

    // Streamed, with required: the deltas assemble into one well-formed call.
    const calls = new Map<number, { id?: string; name?: string; args: string }>();
    let finish: string | null | undefined;
    for await (const chunk of await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Time or weather?" }],
      tools: [weather, time],
      tool_choice: "required",
      stream: true,
    })) {
      for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
        const entry = calls.get(d.index) ?? { args: "" };
        entry.id ??= d.id;
        entry.name ??= d.function?.name;
        entry.args += d.function?.arguments ?? "";
        calls.set(d.index, entry);
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    const streamed = calls.get(0)!;
    expect(["get_weather", "get_time"]).toContain(streamed.name);
    expect(streamed.id).toMatch(/^call_/);
    expect(typeof JSON.parse(streamed.args)).toBe("object");

    // The assistant's call and the tool's result go back in; the model answers in text.
    const answer = await client.chat.completions.create({
      model,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: JSON.stringify({ celsius: 21 }) },
      ],
      tools: [weather],
      tool_choice: "none",
      max_tokens: 6,
    });
    expect(answer.choices[0]?.finish_reason).toBe("length");
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(answer.choices[0]?.message.tool_calls ?? []).toEqual([]);
    // The tool result is in the prompt: it costs prompt tokens the same question without it does not.
    const bare = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      max_tokens: 1,
    });
    expect(answer.usage!.prompt_tokens).toBeGreaterThan(bare.usage!.prompt_tokens + 5);
  });

  it("tool_choice auto lets the model answer in text (node-llama-cpp's function calling)", async () => {
    const res = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hi" }],
      tools: [weather],
      max_tokens: 6,
    });
    expect(["length", "tool_calls"]).toContain(res.choices[0]?.finish_reason);
  });

  it("legacy /v1/completions, streamed and not", async () => {
    const res = await client.completions.create({ model, prompt: "Once upon", max_tokens: 6 });
    expect(res.object).toBe("text_completion");
    expect(res.choices[0]?.text.length).toBeGreaterThan(0);
    expect(res.usage?.completion_tokens).toBe(6);
    const defaults = await client.completions.create({ model, prompt: "Once upon" });
    expect(defaults.usage?.completion_tokens).toBe(16);
    let text = "";
    let finish: string | null | undefined;
    for await (const c of await client.completions.create({ model, prompt: "Once", max_tokens: 4, stream: true })) {
      text += c.choices[0]?.text ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe("length");
  });
});

describe("refusals in OpenAI's error shape, naming the field", () => {
  async function refusal(body: Record<string, unknown>) {
    const err = await client.chat.completions.create(body as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    return (err as InstanceType<typeof OpenAI.BadRequestError>).error as {
      param: string;
      message: string;
      type: string;
    };
  }
  const base = {
    get model() {
      return model;
    },
    messages: [{ role: "user", content: "x" }],
  };

  it("n other than 1, logprobs, images, unknown fields, a tool message answering nothing", async () => {
    expect(await refusal({ ...base, n: 2 })).toMatchObject({ param: "n", type: "invalid_request_error" });
    expect((await refusal({ ...base, logprobs: true })).message).toMatch(/node-llama-cpp/);
    expect(
      await refusal({
        ...base,
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:," } }] }],
      }),
    ).toMatchObject({ param: "messages.0.content.0.type" });
    expect(await refusal({ ...base, frobnicate: true })).toMatchObject({ param: "frobnicate" });
    expect(await refusal({ ...base, audio: { voice: "x" } })).toMatchObject({ param: "audio" });
    expect(await refusal({ ...base, messages: [{ role: "tool", tool_call_id: "c1", content: "x" }] })).toMatchObject({
      param: "messages.0.tool_call_id",
    });
    expect(
      await refusal({ ...base, tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } }),
    ).toMatchObject({ param: "tool_choice.function.name" });
    expect(await refusal({ ...base, tools: [weather], response_format: { type: "json_object" } })).toMatchObject({
      param: "response_format",
    });
  });

  it("accepts fields that change nothing here", async () => {
    const res = await client.chat.completions.create({
      ...base,
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
      user: "u1",
      metadata: { a: "b" },
      store: false,
      service_tier: "auto",
      parallel_tool_calls: true,
      n: 1,
      logprobs: false,
    });
    expect(res.choices).toHaveLength(1);
  });
});

describe("a request routed to another machine", () => {
  it("carries tools, tool choice and the schema to the peer that serves it", async () => {
    const routed = new OpenAI({ baseURL: `${mac.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const { data, response } = await routed.chat.completions
      .create({
        model,
        messages: [{ role: "user", content: "Weather?" }],
        tools: [weather],
        tool_choice: "required",
        stop: ["zz"],
        seed: 3,
      })
      .withResponse();
    expect(response.headers.get("x-potluck-served-by")).toBe("linux");
    const call = data.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).toBe("get_weather");
    expect(["Paris", "Oslo"]).toContain((JSON.parse(call.function.arguments) as { city: string }).city);
    const request = arrived.at(-1)!;
    expect(request).toMatchObject({
      tools: [{ name: "get_weather", parameters: weather.function.parameters }],
      toolChoice: "required",
      stop: ["zz"],
      seed: 3,
      temperature: 1,
    });
    // No cap asked for: the hold is bounded by the serving model's published context.
    expect(request.maxTokens).toBe(2048);

    const json = await routed.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Answer" }],
      response_format: { type: "json_schema", json_schema: { name: "a", strict: true, schema: answerSchema } },
    });
    expect(arrived.at(-1)?.responseFormat).toEqual({ type: "json_schema", name: "a", schema: answerSchema });
    const value = JSON.parse(json.choices[0]?.message.content ?? "") as { color: string };
    expect(["red", "green", "blue"]).toContain(value.color);

    // A schema the serving machine's grammar cannot enforce is still the client's 400, not a 5xx.
    const err = await routed.chat.completions
      .create({
        model,
        messages: [{ role: "user", content: "Answer" }],
        response_format: { type: "json_schema", json_schema: { name: "a", schema: { type: "integer", minimum: 3 } } },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err, String(err)).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(
      "response_format.json_schema.schema.minimum",
    );
  });
});
