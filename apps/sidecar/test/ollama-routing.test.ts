import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { readyTinyEngine, testEngineOptions } from "./fixtures.js";
import {
  directoryFor,
  newIdentity,
  recordingUsage,
  startSidecar,
  writeRoster,
  type RunningSidecar,
} from "./harness.js";

// Ollama's API goes through the same Router as the OpenAI routes: two real sidecars on loopback
// with a roster, signed peer calls, real node-llama-cpp. mac (home) has no model; friend (alice,
// a trusted peer) has the tiny model. An Ollama client talking to mac is served by friend.
const ids = { mac: newIdentity("mac"), friend: newIdentity("friend") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "friend", owner: "alice", identity: ids.friend },
]);
const macUsage = recordingUsage();
const friendUsage = recordingUsage();
let mac: RunningSidecar;
let friend: RunningSidecar;
let model: string;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  const urls = new Map<string, string>();
  const friendEngine = await readyTinyEngine();
  const macEngine = new LlamaEngine(testEngineOptions);
  closers.push(
    () => friendEngine.engine.close(),
    () => macEngine.close(),
  );
  model = friendEngine.id;
  friend = await startSidecar({
    machine: "friend",
    owner: "alice",
    engine: friendEngine.engine,
    identity: ids.friend,
    directory: directoryFor(roster.path, "friend", urls),
    usage: friendUsage,
  });
  mac = await startSidecar({
    machine: "mac",
    engine: macEngine,
    identity: ids.mac,
    directory: directoryFor(roster.path, "mac", urls),
    usage: macUsage,
  });
  for (const s of [mac, friend]) urls.set(s.machine, s.url);
});
afterAll(async () => {
  await mac?.close();
  await friend?.close();
  for (const close of closers) await close();
  roster.cleanup();
});

describe("Ollama's API routed over the household", () => {
  it("serves a chat on mac from friend's model, with the footer and the bill of a routed job", async () => {
    const client = new Ollama({ host: mac.url });
    const stream = await client.chat({
      model,
      messages: [{ role: "user", content: "Hello!" }],
      stream: true,
      options: { num_predict: 6, stop: ["\n\n\n"] },
      format: "json",
    });
    let last: Record<string, unknown> = {};
    for await (const part of stream) last = part as unknown as Record<string, unknown>;
    expect(last).toMatchObject({
      done: true,
      served_by: "friend",
      potluck: { served_by: "friend", route: "peer", owner: "alice", test_model: true },
    });
    // format json is enforced by a grammar on friend, so the object may close before num_predict.
    const evalCount = last.eval_count as number;
    expect(evalCount).toBeGreaterThanOrEqual(1);
    expect(evalCount).toBeLessThanOrEqual(6);
    const reply = await client.generate({ model, prompt: "Hi", options: { num_predict: 4 } });
    expect(reply).toMatchObject({ done: true, served_by: "friend" });
    // mac held each job before asking; friend settled each hold for the tokens it generated.
    expect(macUsage.jobs.filter((j) => j.model === model).map((j) => [j.side, j.servedBy])).toEqual([
      ["hold", "friend"],
      ["hold", "friend"],
    ]);
    const billed = friendUsage.jobs.filter((j) => j.side === "settle" && j.model === model);
    expect(billed.map((j) => [j.servedBy, j.account, j.completionTokens])).toEqual([
      ["friend", "home", evalCount],
      ["friend", "home", reply.eval_count],
    ]);
  });

  it("names the layer that failed when routing fails, in Ollama's error shape", async () => {
    const res = await fetch(`${mac.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model, messages: [{ role: "user", content: "x" }], potluck: { on: "nowhere" } }),
    });
    expect(res.status).toBe(503);
    const { error } = (await res.json()) as { error: string };
    expect(error).toMatch(/^no machine can serve model .* on nowhere right now: .*nowhere \(peer\): roster — /);
    const missing = await new Ollama({ host: mac.url })
      .chat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e as Error & { status_code: number });
    expect(missing).toMatchObject({ status_code: 404 });
    expect((missing as Error).message).toMatch(
      /^model "no-such-model" not found, try pulling it first \(model: no machine/,
    );
  });
});
