import OpenAI from "openai";
import { ChatCompletionResponse, ModelListResponse } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine } from "./fixtures.js";
import { newIdentity, startSidecar, type RunningSidecar } from "./harness.js";

// The official `openai` client against a real listening sidecar running the tiny test model.
let engine: LlamaEngine;
let model: string;
let sidecar: RunningSidecar;
let client: OpenAI;

beforeAll(async () => {
  ({ engine, id: model } = await readyTinyEngine());
  sidecar = await startSidecar({ machine: "mac", engine, identity: newIdentity("mac") });
  client = new OpenAI({ baseURL: `${sidecar.url}/v1`, apiKey: "unused-local", maxRetries: 0 });
});
afterAll(async () => {
  await sidecar?.close();
  await engine?.close();
});

async function post(
  path: string,
  body: string,
  headers: Record<string, string> = { "content-type": "application/json" },
) {
  const res = await fetch(`${sidecar.url}${path}`, { method: "POST", headers, body });
  return {
    status: res.status,
    served: res.headers.get("x-potluck-served-by"),
    body: (await res.json()) as { error?: { code: string; message: string; field?: string } } & Record<string, unknown>,
  };
}

describe("OpenAI-compatible API with the official client", () => {
  it("streams a chat completion whose last chunk is the footer naming the machine", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model, messages: [{ role: "user", content: "Hello!" }], max_tokens: 20, stream: true })
      .withResponse();
    expect(response.headers.get("x-potluck-served-by")).toBe("mac");
    let text = "";
    let last: Record<string, unknown> | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      last = chunk as unknown as Record<string, unknown>;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(last).toMatchObject({
      served_by: "mac",
      potluck: { served_by: "mac", test_model: true, route: "local" },
      usage: { completion_tokens: 20 },
    });
  });

  it("answers non-streaming with usage counts and served_by", async () => {
    const { data, response } = await client.chat.completions
      .create({
        model,
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
        ],
        max_tokens: 12,
      })
      .withResponse();
    expect(response.headers.get("x-potluck-served-by")).toBe("mac");
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(data.choices[0]?.finish_reason).toBe("length");
    expect(data.usage).toMatchObject({ completion_tokens: 12 });
    expect(data.usage!.prompt_tokens).toBeGreaterThan(5);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + 12);
    expect((data as unknown as { served_by: string }).served_by).toBe("mac");
  });

  it("answers in the shapes protocol's response schemas (what diagnostics reads) describe", async () => {
    const models = ModelListResponse.parse(await (await fetch(`${sidecar.url}/v1/models`)).json());
    expect(models.data.map((m) => [m.id, m.potluck.state, m.potluck.test_model])).toEqual([[model, "ready", true]]);
    const { body } = await post(
      "/v1/chat/completions",
      JSON.stringify({ model, messages: [{ role: "user", content: "Hi" }], max_tokens: 1, potluck: { on: "mac" } }),
    );
    expect(ChatCompletionResponse.parse(body).served_by).toBe("mac");
  });

  it("gives the same greedy completion twice (deterministic through HTTP)", async () => {
    const ask = () =>
      client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Same?" }],
        max_tokens: 16,
        temperature: 0,
      });
    expect((await ask()).choices[0]?.message.content).toBe((await ask()).choices[0]?.message.content);
  });

  it("embeds text", async () => {
    const res = await client.embeddings.create({ model, input: ["hello", "world"] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0]?.embedding).toHaveLength(64);
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("lists the model, labelled as a test model", async () => {
    const models = await client.models.list();
    const entry = models.data.find((m) => m.id === model) as unknown as {
      owned_by: string;
      potluck: { test_model: boolean; state: string };
    };
    expect(entry.owned_by).toMatch(/TEST MODEL/);
    expect(entry.potluck).toMatchObject({ test_model: true, state: "ready" });
  });

  it("retrieves one model by id, and an unknown id is OpenAI's 404", async () => {
    const one = (await client.models.retrieve(model)) as unknown as { id: string; potluck: { machine: string } };
    expect(one).toMatchObject({ id: model, object: "model" });
    expect(one.potluck.machine).toBeTruthy();
    await expect(client.models.retrieve("no-such-model")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const missing = await fetch(`${sidecar.url}/v1/models/org/repo:tag`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
  });
});

describe("bad input is a clear 4xx naming the field", () => {
  it("unknown model: 404 model_not_found on model, as OpenAI answers it", async () => {
    const r = await post(
      "/v1/chat/completions",
      JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    );
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: "model_not_found", field: "model" });
    expect(r.body.error?.message).toContain(model);
    const e = await post("/v1/embeddings", JSON.stringify({ model: "no-such-model", input: "x" }));
    expect(e.status).toBe(404);
    expect(e.body.error?.field).toBe("model");
    // The official client raises its NotFoundError for it, as against api.openai.com.
    await expect(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("a prompt longer than the model's context: 400 context_length_exceeded on messages, as OpenAI answers it", async () => {
    const long = Array.from({ length: 6_000 }, (_, i) => `word${i}`).join(" ");
    const r = await post(
      "/v1/chat/completions",
      JSON.stringify({ model, messages: [{ role: "user", content: long }] }),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error).toMatchObject({ code: "context_length_exceeded", field: "messages" });
    expect(r.body.error?.message).toMatch(/does not fit in the model's context of \d+ tokens/);
  });

  it("empty messages: 400 on messages", async () => {
    const r = await post("/v1/chat/completions", JSON.stringify({ model, messages: [] }));
    expect(r.status).toBe(400);
    expect(r.body.error?.field).toBe("messages");
  });

  it("wrong types: 400 naming the field", async () => {
    expect((await post("/v1/chat/completions", JSON.stringify({ model, messages: "hi" }))).body.error?.field).toBe(
      "messages",
    );
    expect(
      (await post("/v1/chat/completions", JSON.stringify({ model, messages: [{ role: "user", content: 5 }] }))).body
        .error?.field,
    ).toBe("messages.0.content");
    expect(
      (
        await post(
          "/v1/chat/completions",
          JSON.stringify({ model, messages: [{ role: "user", content: "x" }], max_tokens: "many" }),
        )
      ).body.error?.field,
    ).toBe("max_tokens");
    expect(
      (await post("/v1/chat/completions", JSON.stringify({ model: 7, messages: [{ role: "user", content: "x" }] })))
        .status,
    ).toBe(400);
    expect((await post("/v1/embeddings", JSON.stringify({ input: 3 }))).body.error?.field).toBe("input");
  });

  it("malformed JSON: 400", async () => {
    const r = await post("/v1/chat/completions", "{not json");
    expect(r.status).toBe(400);
  });

  it("oversized body: 413", async () => {
    const big = JSON.stringify({ model, messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] });
    const r = await post("/v1/chat/completions", big);
    expect(r.status).toBe(413);
    expect(r.body.error?.code).toBe("body_too_large");
  });

  it("oversized body without a content-length (chunked): 413 once it passes the limit", async () => {
    const piece = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ === 0)
          controller.enqueue(new TextEncoder().encode(`{"model":"${model}","messages":[{"role":"user","content":"`));
        else if (sent < 100) controller.enqueue(piece);
        else controller.close();
      },
    });
    const res = await fetch(`${sidecar.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string; field: string } }).error).toMatchObject({
      code: "body_too_large",
      field: "body",
    });
  });

  it("reads a chunked body under the limit like any other", async () => {
    const text = JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text.slice(0, 10)));
        controller.enqueue(new TextEncoder().encode(text.slice(10)));
        controller.close();
      },
    });
    const res = await fetch(`${sidecar.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ served_by: "mac", usage: { completion_tokens: 3 } });
  });
});
