import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine } from "./fixtures.js";
import { newIdentity, startSidecar, type RunningSidecar } from "./harness.js";
import { fakeSidecar } from "./ollama-fakes.js";

// Property tests of the Ollama routes: any valid body is served (never a 500), and a valid body
// with one field made invalid is a 400 whose text starts with that field's dotted path.

const roles = ["system", "user", "assistant", "tool"] as const;
const toolName = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/);
const schema = fc.constantFrom(
  { type: "object" },
  { type: "object", properties: { age: { type: "integer" } }, required: ["age"] },
  { type: "object", properties: { name: { type: "string" }, tags: { type: "array", items: { type: "string" } } } },
);

const message = fc.oneof(
  fc.record({ role: fc.constantFrom(...roles), content: fc.string({ maxLength: 40 }) }),
  fc.record({
    role: fc.constant("assistant"),
    content: fc.constant(""),
    tool_calls: fc.array(
      fc.record({ function: fc.record({ name: toolName, arguments: fc.dictionary(toolName, fc.jsonValue()) }) }),
      { minLength: 1, maxLength: 2 },
    ),
  }),
  fc.record({ role: fc.constant("tool"), content: fc.string({ maxLength: 40 }), tool_name: toolName }),
);

const options = fc.record(
  {
    num_predict: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(-1, -2)),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
    // Up to 128, not Ollama's whole range: with a JSON grammar and top_k 213 (temperature ~2) the
    // random-weight test model's generation never ends in node-llama-cpp 3.21.1 and keeps the model's
    // slot (README, "What is not built yet"); that is a runtime bug this property would hit at random.
    top_k: fc.integer({ min: 0, max: 128 }),
    seed: fc.integer({ min: -1, max: 2 ** 31 }),
    stop: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 }),
    repeat_penalty: fc.double({ min: 0, max: 10, noNaN: true }),
    presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
    frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
    num_ctx: fc.integer({ min: 1, max: 131_072 }),
    num_thread: fc.integer({ min: 0, max: 64 }),
    use_mmap: fc.boolean(),
    min_p: fc.constant(0),
    mirostat: fc.constant(0),
    typical_p: fc.constant(1),
    penalize_newline: fc.boolean(),
  },
  { requiredKeys: [] },
);

const common = {
  stream: fc.boolean(),
  options,
  format: fc.oneof(fc.constantFrom("json", "", null), schema),
  keep_alive: fc.oneof(
    fc.integer({ min: -5, max: 100_000 }),
    fc.constantFrom("5m", "1h30m", "300ms", "-1", "0", "2h45m"),
  ),
  think: fc.constant(false),
};

const validChat = fc
  .record(
    {
      model: fc.constantFrom("fake", "fake:latest"),
      messages: fc.array(message, { minLength: 1, maxLength: 5 }),
      tools: fc.array(
        fc.record(
          {
            type: fc.constant("function"),
            function: fc.record(
              { name: toolName, description: fc.string({ maxLength: 30 }), parameters: schema },
              {
                requiredKeys: ["name"],
              },
            ),
          },
          { requiredKeys: ["type", "function"] },
        ),
        { maxLength: 3 },
      ),
      ...common,
    },
    { requiredKeys: ["model", "messages"] },
    // Tools that the model may or may not call, together with a JSON format, are one thing this
    // runtime cannot do (node-llama-cpp takes functions or a grammar): a 400 saying so, not valid.
  )
  .filter((body) => (body.tools ?? []).length === 0 || body.format === undefined);

const validGenerate = fc.record(
  {
    model: fc.constantFrom("fake", "fake:latest"),
    prompt: fc.string({ minLength: 1, maxLength: 60 }),
    system: fc.string({ maxLength: 30 }),
    raw: fc.constant(false),
    ...common,
  },
  { requiredKeys: ["model", "prompt"] },
);

const knownOptions = new Set(Object.keys(options));
const notA = (allowed: readonly unknown[]) => (value: unknown) => !allowed.includes(value);

/** One field made invalid: its dotted path and the value. */
const breakage: fc.Arbitrary<[string, unknown]> = fc.oneof(
  fc.tuple(fc.constant("model"), fc.oneof(fc.constant(""), fc.integer(), fc.constant(null), fc.boolean())),
  fc.tuple(fc.constant("messages"), fc.oneof(fc.string(), fc.integer(), fc.constant({}))),
  fc.tuple(fc.constant("messages.0.role"), fc.string().filter(notA(roles))),
  fc.tuple(fc.constant("messages.0.content"), fc.oneof(fc.integer(), fc.boolean(), fc.constant([]))),
  fc.tuple(fc.constant("messages.0.images"), fc.array(fc.string(), { minLength: 1, maxLength: 2 })),
  fc.tuple(
    fc.constant("options.temperature"),
    // noNaN: NaN goes out as JSON null, which is a valid (unset) temperature.
    fc.oneof(fc.double({ min: 2.01, max: 1e6, noNaN: true }), fc.double({ min: -1e6, max: -0.01, noNaN: true })),
  ),
  fc.tuple(fc.constant("options.top_k"), fc.integer({ min: 1001, max: 1e9 })),
  fc.tuple(fc.constant("options.num_predict"), fc.oneof(fc.constant(0), fc.integer({ min: -1e6, max: -3 }))),
  fc.tuple(fc.constant("options.min_p"), fc.double({ min: 0.01, max: 1, noNaN: true })),
  fc.tuple(fc.constant("options.mirostat"), fc.integer({ min: 1, max: 2 })),
  fc.tuple(fc.constant("options.stop"), fc.array(fc.string({ minLength: 1 }), { minLength: 5, maxLength: 8 })),
  fc
    .tuple(
      fc.stringMatching(/^[a-z]{3,10}$/).filter((k) => !knownOptions.has(k) && !["numa", "f16_kv"].includes(k)),
      fc.jsonValue(),
    )
    .map(([key, value]): [string, unknown] => [`options.${key}`, value]),
  fc.tuple(fc.constant("format"), fc.string().filter(notA(["json", ""]))),
  fc.tuple(fc.constant("keep_alive"), fc.constantFrom("soon", "5 minutes", "1y", "--1", "m5", "1e99h")),
  fc.tuple(fc.constant("think"), fc.constantFrom(true, "high", "low")),
  fc.tuple(fc.constant("stream"), fc.oneof(fc.string(), fc.integer())),
  fc.tuple(fc.constant("potluck.on"), fc.constantFrom("Not A Machine!", "")),
  fc.tuple(fc.constantFrom("prompt", "frobnicate", "temperature", "n"), fc.jsonValue()),
);

function broken(body: Record<string, unknown>, [path, value]: [string, unknown]): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = path.split(".");
  let at: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) {
    if (typeof at[key] !== "object" || at[key] === null) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  at[keys.at(-1)!] = value;
  return copy;
}

describe("Ollama request bodies, generated", () => {
  const sidecar = fakeSidecar();

  it("serves every valid /api/chat and /api/generate body (never a 4xx or a 500)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.tuple(fc.constant("/api/chat"), validChat), fc.tuple(fc.constant("/api/generate"), validGenerate)),
        async ([path, body]) => {
          const res = await sidecar.post(path, body);
          expect(res.status, `${path} ${JSON.stringify(body)}: ${res.text}`).toBe(200);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers a valid body with one field broken with a 400 naming that field", async () => {
    await fc.assert(
      fc.asyncProperty(validChat, breakage, async (body, change) => {
        const res = await sidecar.post("/api/chat", broken(body, change));
        expect(res.status, `${change[0]} = ${JSON.stringify(change[1])}: ${res.text}`).toBe(400);
        const { error } = res.json() as { error: string };
        expect(typeof error).toBe("string");
        expect(error.startsWith(`${change[0]}: `), `${change[0]}: ${error}`).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe("Ollama request bodies, generated, against the real engine", () => {
  let engine: LlamaEngine;
  let model: string;
  let real: RunningSidecar;
  beforeAll(async () => {
    ({ engine, id: model } = await readyTinyEngine());
    real = await startSidecar({ machine: "mac", engine, identity: newIdentity("mac") });
  });
  afterAll(async () => {
    await real?.close();
    await engine?.close();
  });

  it("never answers a valid chat body with a 500", async () => {
    const short = validChat.map((body) => ({
      ...body,
      model,
      options: { ...body.options, num_predict: 3 },
    }));
    await fc.assert(
      fc.asyncProperty(short, async (body) => {
        const res = await fetch(`${real.url}/api/chat`, { method: "POST", body: JSON.stringify(body) });
        const text = await res.text();
        // A body the schema accepts may still not fit the tiny model's context (long tools and
        // history): that is the client's 400 naming messages, never a 5xx.
        if (res.status === 400) {
          expect(JSON.parse(text).error, text).toMatch(/^messages: the prompt .* does not fit in the model's context/);
          return;
        }
        expect(res.status, `${JSON.stringify(body)}: ${text}`).toBe(200);
        const last = text.trim().split("\n").at(-1)!;
        expect(JSON.parse(last), text).toMatchObject({ done: true });
      }),
      { numRuns: 12 },
    );
    // Generated bodies change num_ctx and keep_alive, so some runs recreate the context or reload
    // the model: real work that takes well over a minute on a loaded 2-core machine.
  }, 240_000);
});
