import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError, type EngineEvent, type GenerateRequest, type InferenceEngine } from "../src/inference/engine.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { tinyGguf, tinyModelDigest } from "@potluck/gguf";
import { readyTinyEngine, testEngineOptions, testModelDir, tinyModelPath } from "./fixtures.js";

async function collect(
  stream: AsyncGenerator<EngineEvent>,
): Promise<{ text: string; done: Extract<EngineEvent, { type: "done" }> }> {
  let text = "";
  for await (const event of stream) {
    if (event.type === "token") text += event.text;
    else if (event.type === "done") return { text, done: event };
  }
  throw new Error("stream ended without a done event");
}

const hello = [{ role: "user" as const, content: "Hello, who are you?" }];

describe("tiny test model", () => {
  it("is byte-identical for a seed and differs between seeds", () => {
    expect(tinyModelDigest(3)).toBe(tinyModelDigest(3));
    expect(tinyModelDigest(3)).not.toBe(tinyModelDigest(4));
    expect(tinyGguf(3).subarray(0, 4).toString("latin1")).toBe("GGUF");
  });
});

describe("LlamaEngine on the tiny model", () => {
  let engine: InferenceEngine;
  let id: string;
  beforeAll(async () => {
    ({ engine, id } = await readyTinyEngine());
  });
  afterAll(async () => engine.close());

  it("labels a renamed copy of the tiny model as a test model from its metadata", async () => {
    const other = new LlamaEngine(testEngineOptions);
    try {
      await other.load({ id: "renamed", path: tinyModelPath(), testModel: false });
      expect(other.state("renamed")).toMatchObject({ state: "ready", testModel: true });
    } finally {
      await other.close();
    }
  });

  it("reports the model ready and labelled as a test model", () => {
    expect(engine.state(id)).toMatchObject({ id, state: "ready", testModel: true });
    expect(engine.list().map((m) => m.id)).toEqual([id]);
  });

  it("streams tokens up to max tokens and counts usage", async () => {
    const tokens: string[] = [];
    let done: EngineEvent | undefined;
    for await (const event of engine.stream(id, { messages: hello, maxTokens: 24 })) {
      if (event.type === "token") tokens.push(event.text);
      else done = event;
    }
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.join("").length).toBeGreaterThan(0);
    expect(done).toMatchObject({ type: "done", finishReason: "length", usage: { completionTokens: 24 } });
    expect((done as Extract<EngineEvent, { type: "done" }>).usage.promptTokens).toBeGreaterThan(5);
  });

  it("counts prompt tokens alike whether or not the previous request left the prompt in the context", async () => {
    const promptTokensOf = async (messages: GenerateRequest["messages"]) =>
      (await collect(engine.stream(id, { messages, maxTokens: 3 }))).done.usage.promptTokens;
    const longer = [{ role: "system" as const, content: "Answer in one short sentence, please." }, ...hello];
    const fresh = await promptTokensOf(hello);
    const reused = await promptTokensOf(hello);
    const other = await promptTokensOf(longer);
    const afterOther = await promptTokensOf(hello);
    expect([reused, afterOther]).toEqual([fresh, fresh]);
    expect(other).toBeGreaterThan(fresh + 5);
  });

  it("is deterministic: greedy twice, and seeded sampling twice", async () => {
    const a = await collect(engine.stream(id, { messages: hello, maxTokens: 32 }));
    const b = await collect(engine.stream(id, { messages: hello, maxTokens: 32 }));
    expect(a.text).toBe(b.text);
    const c = await collect(engine.stream(id, { messages: hello, maxTokens: 32, temperature: 1, seed: 42 }));
    const d = await collect(engine.stream(id, { messages: hello, maxTokens: 32, temperature: 1, seed: 42 }));
    expect(c.text).toBe(d.text);
  });

  it("joins tokens inside the batch window, sends the first at once and never holds the end", async () => {
    const single = await collect(engine.stream(id, { messages: hello, maxTokens: 24 }));
    // A window far longer than the reply: only the first token and then, released by the end of
    // the generation (not by the window running out), everything else as one event.
    const events: EngineEvent[] = [];
    for await (const event of engine.stream(id, { messages: hello, maxTokens: 24, batchWindowMs: 600_000 }))
      events.push(event);
    expect(events.map((e) => e.type)).toEqual(["token", "token", "done"]);
    expect(
      events
        .slice(0, 2)
        .map((e) => (e.type === "token" ? e.text : ""))
        .join(""),
    ).toBe(single.text);
    expect(events[2]).toMatchObject({ type: "done", usage: { completionTokens: 24 } });
  });

  it("serves the next request normally after one is abandoned mid-stream", async () => {
    const before = await collect(engine.stream(id, { messages: hello, maxTokens: 16 }));
    const abandoned = engine.stream(id, {
      messages: [{ role: "user", content: "something else entirely" }],
      maxTokens: 500,
    });
    await abandoned.next();
    await abandoned.return(undefined);
    const aborter = new AbortController();
    const aborted = engine.stream(id, { messages: hello, maxTokens: 500, signal: aborter.signal });
    await aborted.next();
    aborter.abort(new Error("client went away"));
    for await (const _ of aborted) {
      /* drains whatever the runtime had produced */
    }
    const after = await collect(engine.stream(id, { messages: hello, maxTokens: 16 }));
    expect(after.text).toBe(before.text);
    expect(after.done.usage.completionTokens).toBe(16);
  });

  it("embeds text into vectors of the model's width", async () => {
    const { vectors, promptTokens } = await engine.embed(id, ["hello world", "a different sentence"]);
    expect(vectors).toHaveLength(2);
    expect(vectors[0]).toHaveLength(64);
    expect(vectors[0]).not.toEqual(vectors[1]);
    expect(vectors[0]!.every(Number.isFinite)).toBe(true);
    expect(promptTokens).toBeGreaterThan(4);
  });

  it("refuses an unknown model with model_not_found", async () => {
    await expect(collect(engine.stream("nope", { messages: hello, maxTokens: 4 }))).rejects.toMatchObject({
      code: "model_not_found",
      status: 404,
    });
  });
});

describe("LlamaEngine limits and failures", () => {
  it("answers queue_full when the model's queue is full", async () => {
    const { engine, id } = await readyTinyEngine({ queueWaitingMax: 0 });
    try {
      const first = engine.stream(id, { messages: hello, maxTokens: 64 });
      await first.next(); // holds the only slot while it is not read further
      const second = engine.stream(id, { messages: hello, maxTokens: 4 });
      const error = await second.next().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EngineError);
      expect(error).toMatchObject({ status: 503, code: "queue_full" });
      expect((error as Error).message).toMatch(/queue is full/);
      await first.return(undefined);
      // After the first stream is closed, the slot is free again.
      const third = await collect(engine.stream(id, { messages: hello, maxTokens: 4 }));
      expect(third.done.finishReason).toBe("length");
    } finally {
      await engine.close();
    }
  });

  it("marks a GGUF without feed-forward length failed, with the reason, instead of aborting", async () => {
    const bad = tinyGguf(5);
    // Corrupt the key name in place (same length) so the metadata no longer has it.
    const key = Buffer.from("llama.feed_forward_length");
    const at = bad.indexOf(key);
    expect(at).toBeGreaterThan(0);
    Buffer.from("llama.feed_forward_lengtX").copy(bad, at);
    const path = join(testModelDir, `bad-no-ffn-${process.pid}.gguf`);
    writeFileSync(path, bad);
    const engine = new LlamaEngine(testEngineOptions);
    try {
      // Both labels: the check must run for test models and real ones alike.
      await expect(engine.load({ id: "bad-real", path, testModel: false })).rejects.toThrow(/feed_forward_length/);
      await expect(engine.load({ id: "bad", path, testModel: true })).rejects.toThrow(/feed_forward_length/);
      expect(engine.state("bad")).toMatchObject({
        state: "failed",
        reason: expect.stringMatching(/lacks required GGUF metadata/),
      });
      await expect(collect(engine.stream("bad", { messages: hello, maxTokens: 4 }))).rejects.toMatchObject({
        code: "model_failed",
      });
    } finally {
      await engine.close();
    }
  });
});
