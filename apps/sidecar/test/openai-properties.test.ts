import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine } from "./fixtures.js";
import { newIdentity, startSidecar, type RunningSidecar } from "./harness.js";

// Random OpenAI request bodies against a real listening sidecar on the tiny model: a valid body
// is always answered (never a 500), an invalid one is a 400 in OpenAI's shape naming the field.
let engine: LlamaEngine;
let model: string;
let sidecar: RunningSidecar;

beforeAll(async () => {
  ({ engine, id: model } = await readyTinyEngine());
  sidecar = await startSidecar({ machine: "props", engine, identity: newIdentity("props") });
});
afterAll(async () => {
  await sidecar?.close();
  await engine?.close();
});

interface Answer {
  status: number;
  text: string;
  error?: { message: string; type: string; param: string | null; code: string | null };
}

async function post(path: string, body: unknown): Promise<Answer> {
  const res = await fetch(`${sidecar.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const error = res.status >= 400 ? (JSON.parse(text) as { error: Answer["error"] }).error : undefined;
  return { status: res.status, text, ...(error === undefined ? {} : { error }) };
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "weather",
      parameters: { type: "object", properties: { city: { enum: ["Paris", "Oslo"] } }, required: ["city"] },
    },
  },
  { type: "function", function: { name: "ping", parameters: { type: "object", properties: {} } } },
];
const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };

const text = fc.string({ minLength: 0, maxLength: 40 });
const content = fc.oneof(
  text,
  fc.array(
    text.map((t) => ({ type: "text", text: t })),
    { minLength: 1, maxLength: 3 },
  ),
);
const plainMessage = fc.record({ role: fc.constantFrom("system", "developer", "user", "assistant"), content });
/** An assistant's call and the tool's answer to it, as a client replays them. */
const callAndResult = fc.tuple(fc.constantFrom("get_weather", "ping"), text).map(([name, result]) => [
  {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_1", type: "function", function: { name, arguments: "{}" } }],
  },
  { role: "tool", tool_call_id: "call_1", content: result },
]);
const messages = fc
  .tuple(fc.array(plainMessage, { maxLength: 3 }), fc.option(callAndResult, { nil: undefined }), plainMessage)
  .map(([head, turn, last]) => [...head, ...(turn ?? []), last]);

const orNull = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const toolsPart = fc.oneof(
  fc.constant({}),
  fc.record({ tools: fc.constant(tools), tool_choice: fc.constantFrom("auto", "none") }),
  fc.record({
    tools: fc.constant(tools),
    tool_choice: fc.constantFrom(
      "required",
      { type: "function", function: { name: "get_weather" } },
      { type: "function", function: { name: "ping" } },
    ),
  }),
  fc.record({
    response_format: fc.constantFrom(
      { type: "text" },
      { type: "json_object" },
      { type: "json_schema", json_schema: { name: "a", strict: true, schema } },
    ),
  }),
);
const validBody = fc
  .tuple(
    messages,
    fc.record(
      {
        stream: fc.boolean(),
        stream_options: fc.record({ include_usage: fc.boolean() }),
        max_tokens: fc.integer({ min: 1, max: 3 }),
        temperature: orNull(fc.double({ min: 0, max: 2, noNaN: true })),
        top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
        seed: fc.integer(),
        stop: fc.oneof(
          fc.string({ minLength: 1, maxLength: 4 }),
          fc.array(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 4 }),
        ),
        presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
        frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
        n: fc.constant(1),
        logprobs: fc.constant(false),
        user: text,
        metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), text, { maxKeys: 3 }),
        store: fc.boolean(),
        parallel_tool_calls: fc.boolean(),
      },
      { requiredKeys: ["max_tokens"] },
    ),
    toolsPart,
  )
  .map(([msgs, options, extra]) => ({ model, messages: msgs, ...options, ...extra }));

describe("random OpenAI request bodies", () => {
  it("a valid chat body is answered, never a 500", async () => {
    await fc.assert(
      fc.asyncProperty(validBody, async (body) => {
        const answer = await post("/v1/chat/completions", body);
        expect(answer.status, answer.text).toBe(200);
        // A streamed reply carries no error event and ends as OpenAI's does.
        if (body.stream === true) {
          expect(answer.text).not.toMatch(/^data: \{"error"/m);
          expect(answer.text.endsWith("data: [DONE]\n\n")).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("an invalid body is a 400 in OpenAI's shape naming the field", async () => {
    const known = new Set(["model", "messages", "max_tokens", "stream", "tools", "stop", "seed", "user", "n"]);
    const mutation = fc.oneof(
      fc.constantFrom(
        { set: { n: 2 }, param: "n" },
        { set: { logprobs: true }, param: "logprobs" },
        { set: { top_logprobs: 3 }, param: "top_logprobs" },
        { set: { temperature: 2.5 }, param: "temperature" },
        { set: { top_p: 0 }, param: "top_p" },
        { set: { max_tokens: 0 }, param: "max_tokens" },
        { set: { max_tokens: 1.5 }, param: "max_tokens" },
        { set: { max_tokens: 2_000_000 }, param: "max_tokens" },
        { set: { messages: [] }, param: "messages" },
        { set: { messages: [{ role: "wizard", content: "x" }] }, param: "messages.0.role" },
        { set: { messages: [{ role: "user", content: 5 }] }, param: "messages.0.content" },
        {
          set: { messages: [{ role: "user", content: [{ type: "input_audio" }] }] },
          param: "messages.0.content.0.type",
        },
        { set: { messages: [{ role: "function", name: "f", content: "x" }] }, param: "messages.0.role" },
        { set: { stop: [""] }, param: "stop" },
        { set: { stop: ["a", "b", "c", "d", "e"] }, param: "stop" },
        { set: { tools: [{ type: "retrieval" }] }, param: "tools.0.type" },
        { set: { tool_choice: "sometimes" }, param: "tool_choice" },
        { set: { tool_choice: "required" }, param: "tool_choice" },
        { set: { response_format: { type: "xml" } }, param: "response_format.type" },
        { set: { seed: "x" }, param: "seed" },
        { set: { presence_penalty: 9 }, param: "presence_penalty" },
        { set: { stream: "yes" }, param: "stream" },
        { set: { logit_bias: { "50256": -100 } }, param: "logit_bias" },
        { set: { functions: [{ name: "f" }] }, param: "functions" },
        { set: { stream_options: { include_usage: true, every: 1 } }, param: "stream_options.every" },
      ),
      fc
        .stringMatching(/^[a-z][a-z_]{2,14}$/)
        .filter((key) => !known.has(key) && !["user", "store", "metadata", "stream_options", "potluck"].includes(key))
        .map((key) => ({ set: { [key]: 1 }, param: key })),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async ({ set, param }) => {
        const answer = await post("/v1/chat/completions", {
          model,
          messages: [{ role: "user", content: "x" }],
          max_tokens: 1,
          ...set,
        });
        expect(answer.status, answer.text).toBe(400);
        expect(answer.error?.type).toBe("invalid_request_error");
        expect(answer.error?.param === param || answer.error?.param?.startsWith(`${param}.`), answer.text).toBe(true);
        expect(answer.error?.message).toContain(answer.error?.param ?? "");
      }),
      { numRuns: 60 },
    );
  });

  it("a tool schema the runtime's grammar cannot enforce is a 400, not a 500", async () => {
    const answer = await post("/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
      tools: [{ type: "function", function: { name: "f", parameters: { type: "wat" } } }],
      tool_choice: "required",
    });
    expect(answer.status, answer.text).toBe(400);
    expect(answer.error).toMatchObject({ param: "tools.0.function.parameters.type", type: "invalid_request_error" });
    // A keyword the grammar would silently drop is refused by name, never left unenforced.
    const pattern = await post("/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: "x" }],
      response_format: {
        type: "json_schema",
        json_schema: { name: "p", schema: { type: "object", properties: { id: { type: "string", pattern: "^a" } } } },
      },
    });
    expect(pattern.status, pattern.text).toBe(400);
    expect(pattern.error?.param).toBe("response_format.json_schema.schema.properties.id.pattern");
    // anyOf (how pydantic writes an optional field) is enforced as oneOf.
    const optional = await post("/v1/chat/completions", {
      model,
      messages: [{ role: "user", content: "x" }],
      temperature: 0,
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "o",
          schema: {
            type: "object",
            properties: { ok: { anyOf: [{ type: "boolean" }, { type: "null" }], title: "Ok", default: null } },
            required: ["ok"],
          },
        },
      },
    });
    expect(optional.status, optional.text).toBe(200);
    const reply = JSON.parse(optional.text) as { choices: Array<{ message: { content: string } }> };
    expect([true, false, null]).toContain((JSON.parse(reply.choices[0]!.message.content) as { ok: unknown }).ok);
  });

  it("a valid legacy completion body is answered, an invalid one named", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ prompt: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 1 })), stream: fc.boolean() }),
        async (body) => {
          const answer = await post("/v1/completions", { model, max_tokens: 2, ...body });
          expect(answer.status, answer.text).toBe(200);
        },
      ),
      { numRuns: 10 },
    );
    const bad = await post("/v1/completions", { model, prompt: "x", echo: true });
    expect(bad).toMatchObject({ status: 400, error: { param: "echo" } });
    const many = await post("/v1/completions", { model, prompt: ["a", "b"] });
    expect(many).toMatchObject({ status: 400, error: { param: "prompt" } });
  });
});
