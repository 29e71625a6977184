import type { InferStreamChunk } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { meteredStream } from "../src/usage/metered.js";
import type { UsageJob } from "../src/usage/publisher.js";

const done: InferStreamChunk = {
  type: "done",
  servedBy: "linux",
  testModel: false,
  finishReason: "stop",
  usage: { promptTokens: 5, completionTokens: 2 },
  at: "2026-01-01T00:00:00.000Z",
};
const job = (side: "earn" | "spend"): UsageJob => ({
  jobId: "job-1",
  side,
  account: "home",
  counterparty: "friend",
  servedBy: "linux",
  model: "tiny",
  promptTokens: 5,
  completionTokens: 2,
  parameters: undefined,
});

async function* chunks(log: string[]): AsyncGenerator<InferStreamChunk> {
  try {
    yield { type: "token", text: "Hi" };
    yield done;
  } finally {
    log.push("closed");
  }
}

describe("meteredStream", () => {
  it("publishes the event for the done chunk before that chunk goes on", async () => {
    const log: string[] = [];
    const usage = { publishJob: async (j: UsageJob) => void log.push(`published ${j.side}`) };
    for await (const chunk of meteredStream(chunks(log), usage, () => job("spend"))) log.push(chunk.type);
    expect(log).toEqual(["token", "published spend", "done", "closed"]);
  });

  it("publishes nothing for a job `bill` leaves unbilled, or one stopped before its end", async () => {
    const log: string[] = [];
    const usage = { publishJob: async (j: UsageJob) => void log.push(`published ${j.side}`) };
    for await (const chunk of meteredStream(chunks(log), usage, () => undefined)) log.push(chunk.type);
    for await (const chunk of meteredStream(chunks(log), usage, () => job("earn"))) {
      log.push(chunk.type);
      break;
    }
    expect(log).toEqual(["token", "done", "closed", "token", "closed"]);
  });
});
