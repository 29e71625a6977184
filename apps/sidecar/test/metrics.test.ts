import type { InferStreamChunk, ModelInfo } from "@potluck/protocol";
import { PeerCallError } from "@potluck/peer";
import { describe, expect, it } from "vitest";
import { SidecarMetrics } from "../src/metrics.js";

// The metrics over a scripted engine list and scripted streams: the figures a scrape shows.
const models: ModelInfo[] = [
  {
    id: "big",
    state: "ready",
    testModel: false,
    runtime: { backend: "cuda", gpuLayers: 33, vramBytes: 4_000_000_000, ramBytes: 500_000_000, expiresAt: null },
  },
  { id: "idle", state: "available", testModel: false },
];

async function* reply(tokens: number): AsyncGenerator<InferStreamChunk> {
  for (let i = 0; i < tokens; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    yield { type: "token", text: "x" };
  }
  yield {
    type: "done",
    servedBy: "here",
    testModel: false,
    finishReason: "stop",
    usage: { promptTokens: 1, completionTokens: tokens },
    at: new Date().toISOString(),
  };
}

describe("SidecarMetrics", () => {
  it("reports loaded models' memory, route kinds, first-token time, rate, queue depth and peer errors", async () => {
    const metrics = new SidecarMetrics({ list: () => models });
    const stream = metrics.observe("local", reply(5));
    await stream.next(); // the first token: no longer waiting
    const waiting = metrics.observe("own", reply(1)); // started, nothing pulled yet
    await waiting.next();
    let text = await metrics.registry.metrics();
    expect(text).toMatch(/potluck_sidecar_queue_depth 0/);
    expect(text).toMatch(/potluck_sidecar_requests_in_flight 2/);
    for await (const _ of stream);
    for await (const _ of waiting);
    const peers = metrics.instrumentPeerClient({
      probe: async () => {
        throw new PeerCallError("tunnel", "no answer");
      },
      capabilities: async () => {
        throw new Error("unreachable");
      },
      async *infer() {
        yield { type: "error", code: "x", message: "y", layer: "first-token" };
      },
    });
    await expect(peers.probe({ machine: "p", owner: "o", url: "", identityPublicKey: "" })).rejects.toThrow();
    for await (const _ of peers.infer({ machine: "p", owner: "o", url: "", identityPublicKey: "" }, {} as never));
    text = await metrics.registry.metrics();
    expect(text).toMatch(/potluck_sidecar_model_memory_bytes\{model="big",kind="vram"\} 4000000000/);
    expect(text).toMatch(/potluck_sidecar_model_memory_bytes\{model="big",kind="ram"\} 500000000/);
    expect(text).toMatch(/potluck_sidecar_models\{state="ready"\} 1/);
    expect(text).toMatch(/potluck_sidecar_models\{state="available"\} 1/);
    expect(text).toMatch(/potluck_sidecar_requests_total\{route="local",outcome="ok"\} 1/);
    expect(text).toMatch(/potluck_sidecar_requests_total\{route="own",outcome="ok"\} 1/);
    expect(text).toMatch(/potluck_sidecar_completion_tokens_total\{route="local"\} 5/);
    expect(text).toMatch(/potluck_sidecar_tokens_per_second_count\{route="local"\} 1/);
    expect(text).toMatch(/potluck_sidecar_time_to_first_token_seconds_count\{route="own"\} 1/);
    expect(text).toMatch(/potluck_sidecar_queue_depth 0/);
    expect(text).toMatch(/potluck_sidecar_requests_in_flight 0/);
    expect(text).toMatch(/potluck_sidecar_peer_errors_total\{layer="tunnel"\} 1/);
    expect(text).toMatch(/potluck_sidecar_peer_errors_total\{layer="first-token"\} 1/);
  });

  it("records the first token's time once it is handed on, and for a client that left right after it", async () => {
    const metrics = new SidecarMetrics({ list: () => [] });
    const count = async () =>
      /potluck_sidecar_time_to_first_token_seconds_count\{route="local"\} (\d+)/.exec(
        await metrics.registry.metrics(),
      )?.[1];
    const read = metrics.observe("local", reply(3));
    await read.next();
    expect(await count()).toBeUndefined(); // not yet: the first token is still on its way out
    await read.next();
    expect(await count()).toBe("1");
    const left = metrics.observe("local", reply(3));
    await left.next();
    await left.return(undefined); // the client went away after the first token
    expect(await count()).toBe("2");
  });

  it("counts a request still waiting for its first token as queued", async () => {
    const metrics = new SidecarMetrics({ list: () => [] });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<InferStreamChunk> {
      await gate;
      yield* reply(1);
    }
    const pending = metrics.observe("local", slow()).next();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await metrics.registry.metrics()).toMatch(/potluck_sidecar_queue_depth 1/);
    release();
    await pending;
    expect(await metrics.registry.metrics()).toMatch(/potluck_sidecar_queue_depth 0/);
  });
});
