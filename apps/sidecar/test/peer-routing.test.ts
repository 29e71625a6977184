import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Headers, InferStreamChunk, subjectsFor, UsageEvent } from "@potluck/protocol";
import { signRequest } from "@potluck/peer";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { microCreditsFor } from "../src/usage/pricing.js";
import { readyTinyEngine, testEngineOptions } from "./fixtures.js";
import {
  directoryFor,
  HOLD_MARKER,
  holdingEngine,
  REFUSE_MARKER,
  newIdentity,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// Three real listening sidecars on loopback, a static roster file, signed peer calls and real
// NATS JetStream: mac (home, no model), linux (home, tiny model), friend (alice, tiny model).
const prefix = `t${randomBytes(5).toString("hex")}`;
const subjects = subjectsFor(prefix);
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux"), friend: newIdentity("friend") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
  { name: "friend", owner: "alice", identity: ids.friend },
]);
let nc: NatsConnection;
const closers: Array<() => Promise<void>> = [];
let mac: RunningSidecar;
let linux: RunningSidecar;
let friend: RunningSidecar;
let model: string;
/** The served model's weight count as the engine read it; prices usage. */
let parameters: number | undefined;
let macClient: OpenAI;

beforeAll(async () => {
  nc = await connect({ servers: "nats://127.0.0.1:4222" });
  const urls = new Map<string, string>();
  const directory = (self: string) => directoryFor(roster.path, self, urls);
  const linuxEngine = await readyTinyEngine();
  const friendEngine = await readyTinyEngine();
  const macEngine = new LlamaEngine(testEngineOptions);
  model = linuxEngine.id;
  parameters = friendEngine.engine.state(model)?.parameters;
  const linuxHolding = holdingEngine(linuxEngine.engine);
  closers.push(async () => linuxHolding.release());
  linux = await startSidecar({
    machine: "linux",
    engine: linuxHolding,
    identity: ids.linux,
    directory: directory("linux"),
  });
  friend = await startSidecar({
    machine: "friend",
    owner: "alice",
    engine: friendEngine.engine,
    identity: ids.friend,
    directory: directory("friend"),
    nats: { connection: nc, prefix },
  });
  mac = await startSidecar({
    machine: "mac",
    engine: macEngine,
    identity: ids.mac,
    directory: directory("mac"),
    nats: { connection: nc, prefix },
  });
  for (const s of [mac, linux, friend]) urls.set(s.machine, s.url);
  closers.push(
    () => linuxEngine.engine.close(),
    () => friendEngine.engine.close(),
    () => macEngine.close(),
  );
  macClient = new OpenAI({ baseURL: `${mac.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  for (const s of [mac, linux, friend]) await s?.close();
  for (const close of closers) await close().catch(() => undefined);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(subjects.usageStream.name).catch(() => undefined);
  await nc.drain();
  roster.cleanup();
});

function signedFetch(url: string, path: string, body: string, headers: Record<string, string>) {
  return fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

describe("signed peer API", () => {
  const path = "/peer/probe";
  const body = JSON.stringify({ payload: "hello mesh" });
  const sign = (who = ids.mac, nowMs?: number) =>
    signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "mac", privateKey: who.privateKey },
      { nowMs },
    );

  it("echoes a probe for a caller on the roster", async () => {
    const res = await signedFetch(linux.url, path, body, sign());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ machine: "linux", bytes: 10, payload: "hello mesh" });
  });

  it("answers 401 naming the check: unsigned, unknown key, forged, stale, replayed", async () => {
    const codeOf = async (res: Response) => ({
      status: res.status,
      code: ((await res.json()) as { error: { code: string } }).error.code,
    });
    expect(await codeOf(await signedFetch(linux.url, path, body, {}))).toEqual({ status: 401, code: "unsigned" });
    const stranger = newIdentity("stranger");
    const unknown = signRequest(
      { method: "POST", path, body, target: "linux" },
      { machine: "stranger", privateKey: stranger.privateKey },
    );
    expect(await codeOf(await signedFetch(linux.url, path, body, unknown))).toEqual({
      status: 401,
      code: "unknown_key",
    });
    expect(await codeOf(await signedFetch(linux.url, path, body, sign(ids.friend)))).toEqual({
      status: 401,
      code: "bad_signature",
    });
    expect(await codeOf(await signedFetch(linux.url, path, body, sign(ids.mac, Date.now() - 10 * 60_000)))).toEqual({
      status: 401,
      code: "stale_timestamp",
    });
    const once = sign();
    expect((await signedFetch(linux.url, path, body, once)).status).toBe(200);
    expect(await codeOf(await signedFetch(linux.url, path, body, once))).toEqual({
      status: 401,
      code: "replayed_nonce",
    });
    // A body changed in flight no longer matches the signature.
    expect(await codeOf(await signedFetch(linux.url, path, JSON.stringify({ payload: "tampered!" }), sign()))).toEqual({
      status: 401,
      code: "bad_signature",
    });
  });

  it("bounds the probe payload", async () => {
    const big = JSON.stringify({ payload: "x".repeat(70_000) });
    const res = await signedFetch(
      linux.url,
      path,
      big,
      signRequest(
        { method: "POST", path, body: big, target: "linux" },
        { machine: "mac", privateKey: ids.mac.privateKey },
      ),
    );
    expect([400, 413]).toContain(res.status);
  });

  it("refuses /peer/infer whose requester is not the signer", async () => {
    const body = JSON.stringify({
      jobId: "job-1",
      model,
      messages: [{ role: "user", content: "x" }],
      maxTokens: 4,
      requester: { machine: "friend", owner: "alice" },
    });
    const headers = signRequest(
      { method: "POST", path: "/peer/infer", body, target: "linux" },
      { machine: "mac", privateKey: ids.mac.privateKey },
    );
    const res = await signedFetch(linux.url, "/peer/infer", body, headers);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "requester_mismatch", field: "requester.machine" } });
  });

  it("streams /peer/infer as NDJSON chunks ending in done", async () => {
    const body = JSON.stringify({
      jobId: "job-2",
      model,
      messages: [{ role: "user", content: "x" }],
      maxTokens: 6,
      requester: { machine: "mac", owner: "home" },
    });
    const res = await signedFetch(
      linux.url,
      "/peer/infer",
      body,
      signRequest(
        { method: "POST", path: "/peer/infer", body, target: "linux" },
        { machine: "mac", privateKey: ids.mac.privateKey },
      ),
    );
    expect(res.headers.get("content-type")).toMatch(/ndjson/);
    const chunks = (await res.text())
      .trim()
      .split("\n")
      .map((line) => InferStreamChunk.parse(JSON.parse(line)));
    expect(chunks.at(-1)).toMatchObject({
      type: "done",
      servedBy: "linux",
      testModel: true,
      finishReason: "length",
      usage: { completionTokens: 6 },
    });
    expect(chunks.slice(0, -1).every((c) => c.type === "token")).toBe(true);
  });

  it("answers a probe that names a model with that model's state there", async () => {
    const probe = async (named: string) => {
      const body = JSON.stringify({ payload: "hello mesh", model: named });
      const res = await signedFetch(
        linux.url,
        path,
        body,
        signRequest(
          { method: "POST", path, body, target: "linux" },
          { machine: "mac", privateKey: ids.mac.privateKey },
        ),
      );
      expect(res.status).toBe(200);
      return res.json();
    };
    expect(await probe(model)).toMatchObject({
      payload: "hello mesh",
      model: { info: { id: model, state: "ready", testModel: true }, available: [model] },
    });
    expect(await probe("no-such-model")).toMatchObject({ model: { info: null, available: [model] } });
  });

  it("refuses a probe whose model is not a string, naming the field", async () => {
    const body = JSON.stringify({ payload: "x", model: 7 });
    const res = await signedFetch(
      linux.url,
      path,
      body,
      signRequest({ method: "POST", path, body, target: "linux" }, { machine: "mac", privateKey: ids.mac.privateKey }),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { field: "model" } });
  });

  it("reports capabilities with the test model labelled", async () => {
    const headers = signRequest(
      { method: "GET", path: "/peer/capabilities", body: "", target: "linux" },
      { machine: "mac", privateKey: ids.mac.privateKey },
    );
    const res = await fetch(`${linux.url}/peer/capabilities`, { headers });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      machine: "linux",
      owner: "home",
      status: "ready",
      models: [{ id: model, state: "ready", testModel: true }],
    });
  });
});

describe("routing", () => {
  it("runs on an own machine when the model is not here, and the footer names it", async () => {
    const { data: stream, response } = await macClient.chat.completions
      .create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 16, stream: true })
      .withResponse();
    expect(response.headers.get(Headers.servedBy)).toBe("linux");
    let last: Record<string, unknown> | undefined;
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      last = chunk as unknown as Record<string, unknown>;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(last).toMatchObject({
      served_by: "linux",
      potluck: { route: "own", test_model: true },
      usage: { completion_tokens: 16 },
    });
  });

  it("asks the chosen machine once per prompt: a fresh probe that carries the model's state, beside the job", async () => {
    let paths: string[] = [];
    const record = (req: { url?: string }) => paths.push(req.url ?? "");
    linux.server.on("request", record);
    try {
      for (let i = 0; i < 2; i++) {
        paths = [];
        await macClient.chat.completions.create({
          model,
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 2,
          potluck: { on: "linux" },
        } as never);
        // The job goes out beside the probe (head-start.ts), so either may arrive first; with
        // POTLUCK_PATH_CONFIRMED_MS on, a confirmed path's probe goes out once the first token is
        // in, so it may still be on its way when the short reply is over.
        for (let waited = 0; paths.length < 2 && waited < 2_000; waited += 10)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(paths.sort()).toEqual(["/peer/infer", "/peer/probe"]);
      }
    } finally {
      linux.server.off("request", record);
    }
  });

  it("gives the same text through the peer as on the peer itself (greedy)", async () => {
    const body = { model, messages: [{ role: "user" as const, content: "same" }], max_tokens: 12, temperature: 0 };
    const viaMac = await macClient.chat.completions.create(body);
    const onLinux = await new OpenAI({
      baseURL: `${linux.url}/v1`,
      apiKey: "x",
      maxRetries: 0,
    }).chat.completions.create(body);
    expect(viaMac.choices[0]?.message.content).toBe(onLinux.choices[0]?.message.content);
  });

  it("samples on the peer with the caller's top_p and seed", async () => {
    // A narrow nucleus changes what a seeded sample picks; a peer that dropped top_p would not match.
    const body = {
      model,
      messages: [{ role: "user" as const, content: "sample" }],
      max_tokens: 12,
      temperature: 1,
      top_p: 0.05,
      seed: 7,
    };
    const viaMac = await macClient.chat.completions.create(body);
    const onLinux = await new OpenAI({
      baseURL: `${linux.url}/v1`,
      apiKey: "x",
      maxRetries: 0,
    }).chat.completions.create(body);
    const wideOnLinux = await new OpenAI({
      baseURL: `${linux.url}/v1`,
      apiKey: "x",
      maxRetries: 0,
    }).chat.completions.create({ ...body, top_p: 1 });
    expect(onLinux.choices[0]?.message.content).not.toBe(wideOnLinux.choices[0]?.message.content);
    expect(viaMac.choices[0]?.message.content).toBe(onLinux.choices[0]?.message.content);
  });

  it("fails over to the next candidate when the chosen one refuses before its first token", async () => {
    // linux (own, preferred) passes the probe but refuses the run over real HTTP; friend serves.
    const { data: stream, response } = await macClient.chat.completions
      .create({ model, messages: [{ role: "user", content: `hi ${REFUSE_MARKER}` }], max_tokens: 8, stream: true })
      .withResponse();
    expect(response.headers.get(Headers.servedBy)).toBe("friend");
    let last: Record<string, unknown> | undefined;
    for await (const chunk of stream) last = chunk as unknown as Record<string, unknown>;
    expect(last).toMatchObject({
      served_by: "friend",
      potluck: { route: "peer", owner: "alice" },
      usage: { completion_tokens: 8 },
    });
  });

  it("a pinned machine that refuses keeps its own 503, naming the layer and the refusal", async () => {
    // Pinned to linux: one candidate, nothing to fail over to, so its specific error is the answer.
    const res = await fetch(`${mac.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        messages: [{ role: "user", content: `x ${REFUSE_MARKER}` }],
        potluck: { on: "linux" },
      }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /model-runtime: linux refused POST \/peer\/infer \(503 queue_full/,
    );
  });

  it("ends the client's stream with a clear error when the serving host dies mid-stream", async () => {
    const stream = (await macClient.chat.completions.create({
      model,
      messages: [{ role: "user", content: `long ${HOLD_MARKER}` }],
      max_tokens: 64,
      stream: true,
      potluck: { on: "linux" },
    } as never)) as unknown as AsyncIterable<unknown>;
    let chunks = 0;
    const error = await (async () => {
      for await (const _ of stream) {
        if (++chunks === 1) (linux.server as unknown as { closeAllConnections: () => void }).closeAllConnections();
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(chunks).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/linux stopped streaming/);
  });

  it("with the own machine down, uses the trusted peer and publishes usage to JetStream", async () => {
    await linux.close();
    const res = await macClient.chat.completions.create({
      model,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
    });
    expect((res as unknown as { served_by: string }).served_by).toBe("friend");
    expect((res as unknown as { potluck: { route: string } }).potluck.route).toBe("peer");
    const jsm = await jetstreamManager(nc);
    // Both on the paying account's subject: mac's hold before the job, then friend's settlement of it.
    const last = await jsm.streams.getMessage(subjects.usageStream.name, { last_by_subj: subjects.usage("home") });
    const settle = UsageEvent.parse(last!.json());
    const hold = UsageEvent.parse(
      (await jsm.streams.getMessage(subjects.usageStream.name, { seq: last!.seq - 1 }))!.json(),
    );
    expect(hold).toMatchObject({ kind: "hold", account: "home", counterparty: "alice", servedBy: "friend", model });
    expect(settle).toMatchObject({
      kind: "settle",
      account: "home",
      counterparty: "alice",
      servedBy: "friend",
      jobId: hold.jobId,
      ref: hold.eventId,
    });
    expect(settle.tokens).toBeGreaterThan(8);
    // Both sides price the job alike, by the model size friend reported in its capabilities (an
    // unknown size would be priced as an 8 B model, far above the tiny model's amount).
    expect(parameters).toBeGreaterThan(0);
    const priced = microCreditsFor({
      promptTokens: res.usage!.prompt_tokens,
      completionTokens: res.usage!.completion_tokens,
      parameters,
    });
    expect(settle.amount).toBe(priced);
    expect(hold.amount).toBeGreaterThanOrEqual(priced);
    expect(priced).toBeLessThan(
      microCreditsFor({
        promptTokens: res.usage!.prompt_tokens,
        completionTokens: res.usage!.completion_tokens,
        parameters: undefined,
      }),
    );
  });

  it("when nothing can serve, lists every candidate with the layer that failed", async () => {
    await friend.close();
    const res = await fetch(`${mac.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).toBe(503);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("no_route");
    expect(error.message).toMatch(/mac \(local\): model-runtime — does not have model/);
    expect(error.message).toMatch(/linux \(own\): data-plane — .*connection refused/);
    expect(error.message).toMatch(/friend \(peer\): data-plane — .*connection refused/);
    expect(error.message).not.toBe("no reachable peer");
  });

  it("names the roster when asked for a machine it does not know", async () => {
    const res = await fetch(`${mac.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "x" }], potluck: { on: "ghost" } }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /ghost \(peer\): roster — ghost is not on this machine's roster/,
    );
  });
});
