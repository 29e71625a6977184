import { statSync } from "node:fs";
import { MICRO_CREDITS_PER_CREDIT, UsageEvent } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { a100Seconds, microCreditsFor, ReferenceA100, unknownModelParameters } from "../src/usage/pricing.js";
import { usageEventFor, type UsageJob } from "../src/usage/publisher.js";
import { readyTinyEngine, tinyModelPath } from "./fixtures.js";

// Usage credits are normalized A100 time: prefill compute-bound, decode memory-bound, by model size.

describe("usage pricing", () => {
  it("prices an 8 B model's 1,000 + 1,000 tokens at ≈ 0.1325 A100-minutes", () => {
    const job = { promptTokens: 1_000, completionTokens: 1_000, parameters: 8e9 };
    // Independent arithmetic: prefill 2·8e9 FLOP × 1000 / (312e12 × 0.5); decode 8e9 × 2 B × 1000 / 2.039e12.
    const expectedSeconds = (2 * 8e9 * 1_000) / 156e12 + (8e9 * 2 * 1_000) / 2.039e12;
    expect(a100Seconds(job)).toBeCloseTo(expectedSeconds, 9);
    expect(microCreditsFor(job)).toBe(Math.ceil((expectedSeconds / 60) * 1_000_000));
    expect(microCreditsFor(job)).toBeGreaterThan(132_000);
    expect(microCreditsFor(job)).toBeLessThan(133_000);
  });

  it("charges a completion token more than a prompt token, and a bigger model more per token", () => {
    const at = (promptTokens: number, completionTokens: number, parameters: number) =>
      microCreditsFor({ promptTokens, completionTokens, parameters });
    expect(at(0, 1_000, 7e9)).toBeGreaterThan(at(1_000, 0, 7e9) * 10);
    expect(at(100, 500, 70e9)).toBeGreaterThan(at(100, 500, 7e9) * 9);
    expect(at(100, 1_000, 7e9)).toBeGreaterThan(at(100, 500, 7e9));
  });

  it("is one credit for a minute of reference decode", () => {
    // Tokens an A100 decodes in 60 s for a 1 B model: 60 × bandwidth / (1e9 × 2 B).
    const tokensPerMinute = (60 * ReferenceA100.memoryBytesPerS) / (1e9 * ReferenceA100.bytesPerWeight);
    expect(
      microCreditsFor({ promptTokens: 0, completionTokens: Math.round(tokensPerMinute), parameters: 1e9 }),
    ).toBeCloseTo(MICRO_CREDITS_PER_CREDIT, -1);
  });

  it("meters every job at least 1 and prices an unknown model as a typical 8 B one", () => {
    expect(microCreditsFor({ promptTokens: 1, completionTokens: 1, parameters: 1_000 })).toBe(1);
    expect(microCreditsFor({ promptTokens: 0, completionTokens: 0, parameters: 1_000 })).toBe(1);
    expect(microCreditsFor({ promptTokens: 10, completionTokens: 100, parameters: undefined })).toBe(
      microCreditsFor({ promptTokens: 10, completionTokens: 100, parameters: unknownModelParameters }),
    );
  });

  it("puts the priced amount and the total tokens on the ledger's usage event", () => {
    const job: UsageJob = {
      jobId: "job-1",
      side: "earn",
      account: "alice",
      counterparty: "home",
      servedBy: "friend",
      model: "m",
      promptTokens: 40,
      completionTokens: 200,
      parameters: 3e9,
    };
    const event = UsageEvent.parse(usageEventFor(job, new Date("2026-11-27T00:00:00Z")));
    expect(event).toMatchObject({ eventId: "job-1:earn", tokens: 240, amount: microCreditsFor(job) });
    expect(event.amount).toBeGreaterThan(1);
  });

  it("reads the model's weight count from its GGUF tensors", async () => {
    const { engine, id } = await readyTinyEngine();
    try {
      const parameters = engine.state(id)?.parameters;
      // The tiny model's tensors are all F32: their weights take 4 bytes each and make up most of the file.
      const fileBytes = statSync(tinyModelPath()).size;
      expect(parameters).toBeGreaterThan(0);
      expect(parameters! * 4).toBeLessThan(fileBytes);
      expect(parameters! * 4).toBeGreaterThan(fileBytes * 0.5);
    } finally {
      await engine.close();
    }
  });
});
