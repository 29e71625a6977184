import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../src/config.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import type { PeerDirectory } from "../src/peer/directory.js";
import { startSidecarService, type SidecarService } from "../src/service.js";
import { promptTokensMax } from "../src/usage/observed.js";
import { microCreditsFor, parametersMax } from "../src/usage/pricing.js";
import { usageEventFor, type UsageJob, type UsagePublisher } from "../src/usage/publisher.js";
import { testEngineOptions } from "./fixtures.js";
import { newIdentity } from "./harness.js";
import { scratchDir } from "./memory-helpers.js";

// Attack 2: a serving peer of another owner sizes the requester's bill. A real HTTP server speaks
// /peer/probe and /peer/infer: it publishes a model size before the job, streams a short reply and
// then reports a billion tokens of each kind. A real sidecar of owner "home" (no model of its own,
// so the job goes to the peer) must bill what it observed, not what it was told.
const model = "big-model";
const reply = ["Hel", "lo", " there"];
const replyBytes = reply.join("").length;

interface PeerScript {
  /** The size published in the probe answer, before the job. */
  published: number;
  report: { promptTokens: number; completionTokens: number };
  /** The settlement the peer names in its done chunk (as if it had published it); undefined: none. */
  settled?: number;
}

/** The holdEventId of every /peer/infer request the peer got. */
const holds: (string | undefined)[] = [];

function hostilePeer(script: PeerScript): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      if (req.url === "/peer/probe") {
        const { payload } = JSON.parse(body) as { payload: string };
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            machine: "evil",
            bytes: payload.length,
            payload,
            model: {
              info: { id: model, state: "ready", testModel: false, contextSize: 4096, parameters: script.published },
              available: [model],
            },
          }),
        );
        return;
      }
      const { jobId, holdEventId } = JSON.parse(body) as { jobId: string; holdEventId?: string };
      holds.push(holdEventId);
      const settlement =
        script.settled === undefined ? {} : { settlement: { eventId: `${jobId}:settle`, amount: script.settled } };
      res.setHeader("content-type", "application/x-ndjson");
      for (const text of reply) res.write(`${JSON.stringify({ type: "token", text })}\n`);
      // Fields the protocol does not know (a "parameters" in the report) must change nothing either.
      res.end(
        `${JSON.stringify({ type: "done", servedBy: "evil", testModel: false, finishReason: "stop", usage: { ...script.report, parameters: 1e15 }, parameters: 1e15, at: new Date().toISOString(), ...settlement })}\n`,
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

describe("the requester bills what it observed (attack 2)", () => {
  const script: PeerScript = { published: 7e9, report: { promptTokens: 0, completionTokens: 0 } };
  /** Records every event; `acked = false` makes it a JetStream that never acknowledges. */
  const usage: UsagePublisher & { jobs: UsageJob[]; acked: boolean } = {
    jobs: [],
    acked: true,
    publishJob: async (job) => {
      usage.jobs.push(job);
      return usage.acked && { seq: usage.jobs.length };
    },
  };
  const logs: string[] = [];
  let peer: { server: Server; url: string };
  let service: SidecarService;
  let engine: LlamaEngine;
  let scratch: ReturnType<typeof scratchDir>;

  beforeAll(async () => {
    peer = await hostilePeer(script);
    scratch = scratchDir();
    engine = new LlamaEngine(testEngineOptions);
    const eve = newIdentity("evil");
    const directory: PeerDirectory = {
      peers: async () => [{ machine: "evil", owner: "eve", url: peer.url, identityPublicKey: eve.publicKey }],
      signer: async (machine) =>
        machine === "evil" ? { machine, owner: "eve", identityPublicKey: eve.publicKey } : undefined,
    };
    const config = loadSidecarConfig(
      {
        POTLUCK_MACHINE: "mac",
        POTLUCK_OWNER: "home",
        POTLUCK_DATA_DIR: scratch.dir,
        POTLUCK_CPU_PIN: "off",
        POTLUCK_HEAD_START: "0",
        POTLUCK_OLLAMA_PORT: "0",
      },
      [],
    );
    const log = {
      info: (m: unknown) => void logs.push(String(m)),
      warn: (m: unknown) => void logs.push(String(m)),
      error: (m: unknown) => void logs.push(String(m)),
    };
    service = await startSidecarService(config, {
      nats: null,
      models: [],
      memory: null,
      diagnostics: null,
      engine,
      directory,
      usage,
      log,
      identity: newIdentity("mac"),
      remoteAddress: () => "127.0.0.1",
    });
  });
  afterAll(async () => {
    await service?.close();
    await engine?.close();
    await new Promise((resolve) => peer?.server.close(resolve));
    scratch?.cleanup();
  });

  /** Asks for a reply the peer serves; returns the events this machine published for the job, by side. */
  async function ask(content: string, maxTokens: number) {
    usage.jobs.length = 0;
    logs.length = 0;
    holds.length = 0;
    const messages = [{ role: "user" as const, content }];
    const res = await service.app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages, max_tokens: maxTokens }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const hold = usage.jobs.find((j) => j.side === "hold")!;
    // The hold was placed before the peer was asked, and the peer was told its id.
    expect(usage.jobs[0]).toBe(hold);
    expect(holds).toEqual([`${hold.jobId}:hold`]);
    return {
      hold: usageEventFor(hold),
      rest: usage.jobs.filter((j) => j !== hold).map((j) => usageEventFor(j)),
      promptMax: promptTokensMax(messages),
    };
  }

  it("holds no more than max_tokens and its own prompt bound, and refunds a settlement above what it observed (a dispute)", async () => {
    script.published = 7e9;
    script.report = { promptTokens: 1e9, completionTokens: 1e9 };
    script.settled = 1e10;
    const { hold, rest, promptMax } = await ask("what is the capital of France?", 16);
    const bound = microCreditsFor({ promptTokens: promptMax, completionTokens: 16, parameters: 7e9 });
    expect(hold).toMatchObject({ kind: "hold", account: "home", counterparty: "eve", servedBy: "evil", amount: bound });
    // The ledger settles at most the hold; the requester takes back all above what it received.
    const fair = microCreditsFor({ promptTokens: promptMax, completionTokens: replyBytes, parameters: 7e9 });
    expect(rest).toEqual([
      expect.objectContaining({ kind: "refund", account: "home", amount: bound - fair, ref: `${hold.jobId}:settle` }),
    ]);
    expect(logs.join("\n")).toMatch(/usage dispute: job .* served by evil \(eve\) reported 1000000000/);
  });

  it("caps the price of a peer that publishes an absurd model size", async () => {
    script.published = 1e15;
    script.report = { promptTokens: 1e9, completionTokens: 1e9 };
    script.settled = 1e10;
    const { hold, rest, promptMax } = await ask("hi", 8);
    // Eight tokens asked for: the eleven bytes received do not raise the bound above max_tokens.
    expect(hold.amount).toBe(
      microCreditsFor({ promptTokens: promptMax, completionTokens: 8, parameters: parametersMax }),
    );
    expect(rest).toEqual([]);
    // Priced at 10^15 weights the same job would cost 250 times as much.
    expect(parametersMax * 250).toBe(1e15);
  });

  it("leaves an honest settlement alone, with no dispute", async () => {
    script.published = 7e9;
    script.report = { promptTokens: 21, completionTokens: 3 };
    script.settled = microCreditsFor({ promptTokens: 21, completionTokens: 3, parameters: 7e9 });
    const { rest } = await ask("what is the capital of France?", 16);
    expect(rest).toEqual([]);
    expect(logs.join("\n")).not.toMatch(/usage dispute/);
  });

  it("does not ask the peer when its hold could not be published, and says why", async () => {
    usage.jobs.length = 0;
    holds.length = 0;
    usage.acked = false;
    try {
      const res = await service.app.request("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 8 }),
      });
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/no hold for evil's work could be published/);
      expect(holds).toEqual([]);
      expect(usage.jobs.map((j) => j.side)).toEqual(["hold"]);
    } finally {
      usage.acked = true;
    }
  });

  it("voids the hold of a peer that names no settlement", async () => {
    script.report = { promptTokens: 21, completionTokens: 3 };
    script.settled = undefined;
    const { hold, rest } = await ask("what is the capital of France?", 16);
    expect(rest).toEqual([expect.objectContaining({ kind: "void", ref: hold.eventId, amount: hold.amount })]);
  });
});
