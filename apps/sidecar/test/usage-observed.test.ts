import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boundedUsage, countingStream, promptTokensMax, type StreamCount } from "../src/usage/observed.js";

const done = (promptTokens: number, completionTokens: number) => ({
  type: "done" as const,
  servedBy: "evil",
  testModel: false,
  finishReason: "stop" as const,
  usage: { promptTokens, completionTokens },
  at: new Date().toISOString(),
});

describe("the requester's bound on a peer's report", () => {
  it("never bills above max_tokens, the bytes received, the context or its prompt estimate", () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 8_192 }),
        fc.nat({ max: 100_000 }),
        fc.nat({ max: 100_000 }),
        fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
        (prompt, completion, maxTokens, textBytes, promptMax, contextSize) => {
          const usage = boundedUsage(
            done(prompt, completion),
            { textBytes },
            { maxTokens, promptTokensMax: promptMax, ...(contextSize === undefined ? {} : { contextSize }) },
          );
          expect(usage.completionTokens).toBeLessThanOrEqual(
            Math.min(completion, maxTokens, textBytes, contextSize ?? Infinity),
          );
          expect(usage.promptTokens).toBeLessThanOrEqual(Math.min(prompt, promptMax, contextSize ?? Infinity));
          expect(usage.dispute !== undefined).toBe(
            usage.completionTokens !== completion || usage.promptTokens !== prompt,
          );
        },
      ),
    );
  });

  it("leaves a report within the bounds exactly as it is", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8_192 }), fc.nat({ max: 4_000 }), (maxTokens, prompt) => {
        const completion = Math.floor(maxTokens / 2);
        const usage = boundedUsage(
          done(prompt, completion),
          { textBytes: completion },
          { maxTokens, promptTokensMax: prompt },
        );
        expect(usage).toEqual({ promptTokens: prompt, completionTokens: completion });
      }),
    );
  });

  it("counts the reply's UTF-8 bytes as they pass", async () => {
    const count: StreamCount = { textBytes: 0 };
    async function* chunks() {
      yield { type: "token" as const, text: "héllo" };
      yield { type: "token" as const, text: "🙂" };
      yield done(1, 1);
    }
    const seen = [];
    for await (const chunk of countingStream(chunks(), count)) seen.push(chunk.type);
    expect(seen).toEqual(["token", "token", "done"]);
    expect(count.textBytes).toBe(6 + 4);
  });

  it("counts a tool call's name and arguments, so a reply that is only a call is billed its tokens", async () => {
    const count: StreamCount = { textBytes: 0 };
    async function* chunks() {
      yield { type: "tool_call" as const, call: { id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' } };
      yield done(5, 9);
    }
    for await (const chunk of countingStream(chunks(), count)) void chunk;
    expect(count.textBytes).toBe(11 + 15);
    // No max_tokens asked for: the bytes received and the context still bound the bill.
    expect(boundedUsage(done(5, 9), count, { promptTokensMax: 100 })).toEqual({ promptTokens: 5, completionTokens: 9 });
    expect(boundedUsage(done(5, 10_000), count, { promptTokensMax: 100, contextSize: 20 }).completionTokens).toBe(20);
  });

  it("estimates the prompt above its bytes", () => {
    expect(promptTokensMax([{ role: "user", content: "héllo" }])).toBeGreaterThan(6);
  });
});
