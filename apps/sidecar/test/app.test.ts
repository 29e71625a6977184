import { ReplayCache, PeerClient } from "@potluck/peer";
import { describe, expect, it } from "vitest";
import { buildSidecarApp } from "../src/app.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { noPeers } from "../src/peer/directory.js";
import { Router } from "../src/routing/router.js";
import { newIdentity, recordingUsage } from "./harness.js";
import { testEngineOptions } from "./fixtures.js";

function appFrom(address: string | undefined, warm = true) {
  // An engine with nothing loaded: these tests exercise the HTTP surface, not the model.
  const engine = new LlamaEngine(testEngineOptions);
  const usage = recordingUsage();
  const router = new Router({
    machine: "mac",
    owner: "home",
    engine,
    directory: noPeers,
    client: new PeerClient({ sign: newIdentity("mac").sign }),
    usage,
  });
  return buildSidecarApp({
    machine: "mac",
    owner: "home",
    version: "t",
    startedAt: Date.now(),
    isWarm: () => warm,
    remoteAddress: () => address,
    engine,
    router,
    directory: noPeers,
    replay: new ReplayCache(),
    usage,
  });
}

describe("sidecar app", () => {
  it("answers /health with the machine name, and says warming until models are ready", async () => {
    const res = await appFrom("127.0.0.1").request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", machine: "mac" });
    expect(await (await appFrom("127.0.0.1", false).request("/health")).json()).toMatchObject({ status: "warming" });
  });

  it("lets off-box callers reach /health but nothing outside /peer/*", async () => {
    const app = appFrom("100.64.0.7");
    expect((await app.request("/health")).status).toBe(200);
    for (const path of ["/v1/models", "/v1/chat/completions", "/v1/embeddings"]) {
      const res = await app.request(path, { method: path === "/v1/models" ? "GET" : "POST" });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
        /only served to this machine/,
      );
    }
  });

  it("answers unknown routes from loopback with a 404 in the shared shape", async () => {
    const res = await appFrom("::1").request("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("refuses unsigned peer calls even from off-box callers allowed to reach /peer/*", async () => {
    const res = await appFrom("100.64.0.7").request("/peer/capabilities");
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "unsigned" } });
  });
});
