import type { InferStreamChunk } from "@potluck/protocol";
import { describe, expect, it, vi } from "vitest";
import { closeUnacknowledgedHold, heldStream, holdAmountFor, placeHold, type HeldJob } from "../src/usage/hold.js";
import { promptTokensMax } from "../src/usage/observed.js";
import { microCreditsFor } from "../src/usage/pricing.js";
import { usageEventFor, type UsageJob, type UsagePublisher } from "../src/usage/publisher.js";
import { settledStream, type SettledJob } from "../src/usage/settle.js";

// A job between owners: the requester holds before it, the server settles after it, and the
// requester closes what the server does not (void) or disputes a settlement above what it saw (refund).

const messages = [{ role: "user" as const, content: "hello there" }];
const job: HeldJob = {
  jobId: "job-1",
  model: "m",
  maxTokens: 16,
  messages,
  account: "home",
  servedBy: { machine: "evebox", owner: "eve" },
  published: { parameters: 7e9, contextSize: 4096 },
};
const reply = ["Hel", "lo", " there"];

/** A publisher that records every job; `ack: false` makes it fail as a JetStream that never acknowledged. */
function publisher(ack = true): UsagePublisher & { jobs: UsageJob[] } {
  const jobs: UsageJob[] = [];
  return { jobs, publishJob: async (j) => (jobs.push(j), ack && { seq: jobs.length }) };
}

function done(
  usage: { promptTokens: number; completionTokens: number },
  settlement?: { eventId: string; amount: number },
): InferStreamChunk {
  return {
    type: "done",
    servedBy: "evebox",
    testModel: false,
    finishReason: "stop",
    usage,
    at: new Date().toISOString(),
    ...(settlement === undefined ? {} : { settlement }),
  };
}

async function* peer(chunks: InferStreamChunk[], failAfter?: number): AsyncGenerator<InferStreamChunk> {
  for (const [i, c] of chunks.entries()) {
    if (i === failAfter) throw new Error("peer went away");
    yield c;
  }
  if (failAfter === chunks.length) throw new Error("peer went away");
}

const tokens = (texts: string[]): InferStreamChunk[] => texts.map((text) => ({ type: "token", text }));

async function drain(stream: AsyncIterable<InferStreamChunk>): Promise<InferStreamChunk[]> {
  const out: InferStreamChunk[] = [];
  for await (const c of stream) out.push(c);
  return out;
}

describe("the requester's hold", () => {
  const holdMax = microCreditsFor({ promptTokens: promptTokensMax(messages), completionTokens: 16, parameters: 7e9 });

  it("is max_tokens and the prompt bound at the published price, placed as a signed hold paying the server's owner", async () => {
    const usage = publisher();
    const hold = await placeHold(usage, job);
    expect(hold).toEqual({ eventId: "job-1:hold", amount: holdMax, seq: 1 });
    expect(holdAmountFor({ messages, maxTokens: 16, parameters: 7e9 })).toBe(holdMax);
    expect(usage.jobs).toEqual([
      expect.objectContaining({
        side: "hold",
        account: "home",
        counterparty: "eve",
        servedBy: "evebox",
        amount: holdMax,
      }),
    ]);
  });

  it("is refused to the job when JetStream never acknowledged it", async () => {
    expect(await placeHold(publisher(false), job, { pauseMs: 1 })).toBeUndefined();
  });

  it("is published again and voided when JetStream never acknowledged it, since it may be stored all the same", async () => {
    // JetStream answers again from the third publish on (the first copy may or may not be stored).
    const jobs: UsageJob[] = [];
    const usage: UsagePublisher = { publishJob: async (j) => (jobs.push(j), jobs.length >= 3 && { seq: jobs.length }) };
    expect(await placeHold(usage, job, { pauseMs: 1 })).toBeUndefined();
    await vi.waitFor(() => expect(jobs.map((j) => j.side)).toEqual(["hold", "hold", "hold", "void"]), {
      timeout: 5_000,
    });
    expect(jobs.map((j) => usageEventFor(j).eventId)).toEqual(["job-1:hold", "job-1:hold", "job-1:hold", "job-1:void"]);
    expect(jobs[3]).toMatchObject({ ref: "job-1:hold", amount: holdMax, account: "home", counterparty: "eve" });
  });

  it("is voided again in the background when the void after a failed job was not acknowledged", async () => {
    const jobs: UsageJob[] = [];
    // The hold is acknowledged, the first void is not (NATS failing over), the next one is.
    const usage: UsagePublisher = {
      publishJob: async (j) => (jobs.push(j), jobs.length !== 2 && { seq: jobs.length }),
    };
    const hold = (await placeHold(usage, job))!;
    await expect(drain(heldStream(peer(tokens(reply), 1), job, hold, usage))).rejects.toThrow("peer went away");
    await vi.waitFor(() => expect(jobs.map((j) => j.side)).toEqual(["hold", "void", "void"]), { timeout: 10_000 });
    expect(jobs[2]).toMatchObject({ ref: "job-1:hold", amount: hold.amount });
  });

  it("is left to the ledger's expiry when JetStream never answers within the rounds: no void of nothing", async () => {
    const usage = publisher(false);
    const log: string[] = [];
    expect(await closeUnacknowledgedHold(usage, job, holdMax, { pauseMs: 1, log: (m) => log.push(m) })).toBe(false);
    expect(new Set(usage.jobs.map((j) => j.side))).toEqual(new Set(["hold"]));
    expect(usage.jobs.length).toBeGreaterThan(1);
    expect(usage.jobs.length).toBeLessThanOrEqual(10);
    expect(log.at(-1)).toMatch(/hold job-1:hold was never acknowledged nor voided/);
  });

  it("is left to the server when it settles no more than this machine observed: nothing else is published", async () => {
    const usage = publisher();
    const hold = (await placeHold(usage, job))!;
    const fair = microCreditsFor({ promptTokens: 5, completionTokens: 3, parameters: 7e9 });
    const out = await drain(
      heldStream(
        peer([
          ...tokens(reply),
          done({ promptTokens: 5, completionTokens: 3 }, { eventId: "job-1:settle", amount: fair }),
        ]),
        job,
        hold,
        usage,
      ),
    );
    expect(out.map((c) => c.type)).toEqual(["token", "token", "token", "done"]);
    expect(usage.jobs.map((j) => j.side)).toEqual(["hold"]);
  });

  it("refunds the part of a settlement above what it observed (a dispute), against that settlement", async () => {
    const usage = publisher();
    const logs: string[] = [];
    const hold = (await placeHold(usage, job))!;
    // Claims 10^9 tokens and settles for the whole hold; 11 reply bytes came, max_tokens was 16.
    await drain(
      heldStream(
        peer([
          ...tokens(reply),
          done({ promptTokens: 1e9, completionTokens: 1e9 }, { eventId: "job-1:settle", amount: holdMax }),
        ]),
        job,
        hold,
        usage,
        (m) => void logs.push(m),
      ),
    );
    const fair = microCreditsFor({ promptTokens: promptTokensMax(messages), completionTokens: 11, parameters: 7e9 });
    expect(usage.jobs.map((j) => [j.side, j.amount, j.ref])).toEqual([
      ["hold", holdMax, undefined],
      ["refund", holdMax - fair, "job-1:settle"],
    ]);
    expect(holdMax - fair).toBeGreaterThan(0);
    expect(logs.join("\n")).toMatch(/usage dispute: job job-1 served by evebox \(eve\) reported 1000000000 prompt/);
  });

  it("voids the hold when the done chunk names no settlement", async () => {
    const usage = publisher();
    const hold = (await placeHold(usage, job))!;
    await drain(heldStream(peer([...tokens(reply), done({ promptTokens: 5, completionTokens: 3 })]), job, hold, usage));
    expect(usage.jobs.map((j) => [j.side, j.ref])).toEqual([
      ["hold", undefined],
      ["void", "job-1:hold"],
    ]);
  });

  it("voids the hold when the peer fails before any token, and when the stream breaks mid-reply", async () => {
    for (const failAfter of [0, 2]) {
      const usage = publisher();
      const hold = (await placeHold(usage, job))!;
      await expect(drain(heldStream(peer(tokens(reply), failAfter), job, hold, usage))).rejects.toThrow(
        "peer went away",
      );
      expect(usage.jobs.map((j) => [j.side, j.ref])).toEqual([
        ["hold", undefined],
        ["void", "job-1:hold"],
      ]);
    }
  });

  it("voids the hold when this machine stops reading before the end", async () => {
    const usage = publisher();
    const hold = (await placeHold(usage, job))!;
    for await (const chunk of heldStream(
      peer([...tokens(reply), done({ promptTokens: 5, completionTokens: 3 })]),
      job,
      hold,
      usage,
    ))
      if (chunk.type === "token") break;
    expect(usage.jobs.map((j) => j.side)).toEqual(["hold", "void"]);
  });
});

describe("the server's settlement", () => {
  const settled: SettledJob = {
    jobId: "job-1",
    model: "m",
    messages,
    maxTokens: 16,
    holdEventId: "job-1:hold",
    account: "home",
    machine: "evebox",
    owner: "eve",
    parameters: () => 7e9,
  };

  it("settles the hold for the tokens it streamed at its published price and names the settlement in the done chunk", async () => {
    const usage = publisher();
    const out = await drain(
      settledStream(peer([...tokens(reply), done({ promptTokens: 5, completionTokens: 3 })]), settled, usage),
    );
    const amount = microCreditsFor({ promptTokens: 5, completionTokens: 3, parameters: 7e9 });
    expect(usage.jobs).toEqual([
      expect.objectContaining({
        side: "settle",
        account: "home",
        counterparty: "eve",
        servedBy: "evebox",
        amount,
        ref: "job-1:hold",
      }),
    ]);
    expect(out.at(-1)).toMatchObject({ type: "done", settlement: { eventId: "job-1:settle", amount } });
  });

  it("never settles above the hold the requester computed from the same request", async () => {
    const usage = publisher();
    await drain(settledStream(peer([done({ promptTokens: 1e6, completionTokens: 1e6 })]), settled, usage));
    expect(usage.jobs[0]?.amount).toBe(holdAmountFor({ messages, maxTokens: 16, parameters: 7e9 }));
  });

  it("names a settlement JetStream did not acknowledge and publishes it again, and settles nothing for a stream without a done chunk", async () => {
    const failing = publisher(false);
    const out = await drain(settledStream(peer([done({ promptTokens: 5, completionTokens: 3 })]), settled, failing));
    // The work was done: the requester must not void the hold for a lost acknowledgement.
    expect(out[0]).toMatchObject({ settlement: { eventId: "job-1:settle" } });
    // Published again under the same id after a pause (rounds of 3 s): at least one retry follows.
    await new Promise((r) => setTimeout(r, 3_500));
    expect(failing.jobs.filter((j) => j.side === "settle").length).toBeGreaterThanOrEqual(2);
    const usage = publisher();
    await expect(drain(settledStream(peer(tokens(reply), 2), settled, usage))).rejects.toThrow();
    expect(usage.jobs).toEqual([]);
  });

  it("gives the requester no dispute when both sides are honest: its bound prices the same tokens", async () => {
    const server = publisher();
    const requester = publisher();
    const hold = (await placeHold(requester, job))!;
    const served = settledStream(
      peer([...tokens(reply), done({ promptTokens: 5, completionTokens: 3 })]),
      settled,
      server,
    );
    await drain(heldStream(served, job, hold, requester));
    expect(requester.jobs.map((j) => j.side)).toEqual(["hold"]);
    expect(server.jobs.map((j) => j.side)).toEqual(["settle"]);
  });
});
