import type { InferStreamChunk, ModelInfo, PeerInferRequest } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { EngineError, type EngineEvent, type InferenceEngine } from "../src/inference/engine.js";
import type { PeerDirectory, PeerRecord } from "../src/peer/directory.js";
import { Router, type ChatJob, type RouterPeerClient } from "../src/routing/router.js";
import { recordingUsage } from "./harness.js";

// Ranking of ready against available-but-not-loaded models, at the router's boundary: a scripted
// engine and peer client. The real path (a lab machine loading on demand) is in
// tools/test/e2e/models-lazy.test.ts.

const model = "m";
type State = ModelInfo["state"] | "absent";

/** This machine's engine: the model in `state`; a run on an unloaded model loads first. */
function engineIn(state: State, failLoad = false): InferenceEngine {
  const info = (): ModelInfo => ({ id: model, state: state as ModelInfo["state"], testModel: true });
  return {
    load: async () => undefined,
    unload: async () => undefined,
    list: () => (state === "absent" ? [] : [info()]),
    state: (id) => (state === "absent" || id !== model ? undefined : info()),
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    close: async () => undefined,
    async *stream(): AsyncGenerator<EngineEvent> {
      if (state !== "ready") {
        yield { type: "loading", progress: 0 };
        if (failLoad) throw new EngineError(503, "model_failed", "loading model m: probe crashed");
        yield { type: "loading", progress: 1 };
        state = "ready";
      }
      yield { type: "token", text: "local" };
      yield { type: "done", finishReason: "stop", usage: { promptTokens: 1, completionTokens: 1 } };
    },
  };
}

function routerWith(local: InferenceEngine, peers: Array<{ machine: string; owner: string; state: State }>) {
  const records: PeerRecord[] = peers.map((p) => ({ ...p, url: `http://${p.machine}.test`, identityPublicKey: "-" }));
  const directory: PeerDirectory = { peers: async () => records, signer: async () => undefined };
  const client: RouterPeerClient = {
    probe: async (peer) => {
      const state = peers.find((p) => p.machine === peer.machine)!.state;
      return {
        latencyMs: 1,
        model: { info: state === "absent" ? null : { id: model, state, testModel: true }, available: [model] },
      };
    },
    capabilities: async () => {
      throw new Error("not asked: the probe carries the model");
    },
    async *infer(peer: PeerRecord, request: PeerInferRequest): AsyncGenerator<InferStreamChunk> {
      yield { type: "token", text: `from ${peer.machine}` };
      yield {
        type: "done",
        servedBy: peer.machine,
        testModel: true,
        finishReason: "stop",
        usage: { promptTokens: 1, completionTokens: request.maxTokens },
        at: new Date().toISOString(),
      };
    },
  };
  return new Router({ machine: "mac", owner: "home", engine: local, directory, client, usage: recordingUsage() });
}

const job: ChatJob = { model, messages: [{ role: "user", content: "hi" }], maxTokens: 2 };
async function chunksOf(router: Router, on?: string): Promise<{ by: string; chunks: InferStreamChunk[] }> {
  const route = await router.plan(model, on);
  const chunks: InferStreamChunk[] = [];
  for await (const chunk of route.run(job)) chunks.push(chunk);
  return { by: route.choice.machine, chunks };
}

describe("routing ready before available", () => {
  it("prefers an own machine with the model ready over loading it here", async () => {
    const router = routerWith(engineIn("available"), [
      { machine: "box", owner: "home", state: "available" },
      { machine: "linux", owner: "home", state: "ready" },
    ]);
    expect((await chunksOf(router)).by).toBe("linux");
  });

  it("loads it here (loading chunks, then tokens) when no own machine has it ready", async () => {
    const router = routerWith(engineIn("available"), [
      { machine: "linux", owner: "home", state: "available" },
      { machine: "friend", owner: "alice", state: "ready" },
    ]);
    const { by, chunks } = await chunksOf(router);
    expect(by).toBe("mac");
    expect(chunks.map((c) => c.type)).toEqual(["loading", "loading", "token", "done"]);
  });

  it("ranks an own machine whose model is ready over one that must load it, and uses an available one", async () => {
    const ready = routerWith(engineIn("absent"), [
      { machine: "cold", owner: "home", state: "available" },
      { machine: "warm", owner: "home", state: "ready" },
    ]);
    expect((await chunksOf(ready)).by).toBe("warm");
    const onlyCold = routerWith(engineIn("absent"), [{ machine: "cold", owner: "home", state: "loading" }]);
    expect((await chunksOf(onlyCold)).by).toBe("cold");
  });

  it("fails over when a load fails after its progress went out: progress is not a first token", async () => {
    const router = routerWith(engineIn("available", true), [{ machine: "linux", owner: "home", state: "available" }]);
    const { by, chunks } = await chunksOf(router);
    expect(by).toBe("linux");
    // The client saw this machine's progress, then the reply from the machine that took over.
    expect(chunks.map((c) => c.type)).toEqual(["loading", "token", "done"]);
  });

  it("pinned here, loads here even when another machine has it ready", async () => {
    const router = routerWith(engineIn("available"), [{ machine: "linux", owner: "home", state: "ready" }]);
    expect((await chunksOf(router, "mac")).by).toBe("mac");
  });

  it("ends with an error chunk, not a thrown error, when every candidate fails after load progress went out", async () => {
    const router = routerWith(engineIn("available", true), []);
    const { chunks } = await chunksOf(router);
    expect(chunks.map((c) => c.type)).toEqual(["loading", "error"]);
    expect(chunks[1]).toMatchObject({
      type: "error",
      message:
        /mac \(local\): model-runtime — failed before the first token: model_failed: loading model m: probe crashed/,
    });
  });
});
