import { createServer, type AddressInfo } from "node:net";
import type { DiagnosticsReport, LayerResult } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import type { PeerDirectory } from "../src/peer/directory.js";
import { diagnoseWith, type PathChecker } from "../src/routing/diagnose.js";
import { PeerClient } from "@potluck/peer";
import { Router } from "../src/routing/router.js";
import { testEngineOptions } from "./fixtures.js";
import { newIdentity, recordingUsage } from "./harness.js";

// The router asks diagnostics about a candidate it could not use, so a prompt fails with the same
// named layer and fix that `potluck doctor` gives. linux's URL points at a closed loopback port.
const closedPort = await new Promise<number>((resolve) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    server.close(() => resolve(port));
  });
});
const directory: PeerDirectory = {
  peers: async () => [
    { machine: "linux", owner: "home", url: `http://127.0.0.1:${closedPort}`, identityPublicKey: "unused" },
  ],
  signer: async () => undefined,
};

function layer(
  code: LayerResult["code"],
  status: LayerResult["status"],
  extra: Partial<LayerResult> = {},
): LayerResult {
  return {
    code,
    title: code,
    severity: "high",
    status,
    message: `${code} ${status}`,
    checkedAt: new Date().toISOString(),
    ...extra,
  };
}

function report(layers: LayerResult[]): DiagnosticsReport {
  return {
    from: "mac",
    peer: "linux",
    usable: false,
    firstFailure: layers.find((l) => l.status === "failed")?.code ?? null,
    layers,
    generatedAt: new Date().toISOString(),
    cached: false,
  };
}

async function planError(
  checker: PathChecker,
  timeoutMs?: number,
): Promise<{ message: string; asked: Array<{ peer: string; options: unknown }> }> {
  const asked: Array<{ peer: string; options: unknown }> = [];
  const recording: PathChecker = {
    check: (peer, options) => (asked.push({ peer, options }), checker.check(peer, options)),
  };
  const engine = new LlamaEngine(testEngineOptions);
  const router = new Router({
    machine: "mac",
    owner: "home",
    engine,
    directory,
    client: new PeerClient({ sign: newIdentity("mac").sign }),
    usage: recordingUsage(),
    diagnose: diagnoseWith(recording, timeoutMs),
  });
  try {
    await router.plan("tiny");
    throw new Error("plan succeeded");
  } catch (error) {
    return { message: error instanceof Error ? error.message : String(error), asked };
  } finally {
    await engine.close();
  }
}

describe("routing names the failing layer from diagnostics", () => {
  it("replaces the router's own reason with the failed layer, its failure and its fix", async () => {
    const firewall = layer("data-plane", "failed", {
      failure: "firewall-drop",
      message: "firewall likely blocking mesh traffic on potluck0",
      fix: "add accept rules on linux",
    });
    const { message, asked } = await planError({
      check: async () =>
        report([layer("tunnel", "ok"), firewall, layer("first-token", "suppressed", { suppressedBy: "data-plane" })]),
    });
    expect(asked).toEqual([{ peer: "linux", options: { forceFresh: true, model: "tiny" } }]);
    expect(message).toMatch(
      /linux \(own\): data-plane — firewall-drop: firewall likely blocking mesh traffic on potluck0\. Fix: add accept rules on linux/,
    );
    expect(message).not.toMatch(/connection refused/);
  });

  it("names a layer still inside its time-to-visible, marked as confirming", async () => {
    const pending = layer("data-plane", "pending", {
      failure: "mtu-blackhole",
      message: "possible mtu-blackhole, confirming (0 of 10 s): the 1400-byte probe was lost",
      fix: "ip link set dev potluck0 mtu 1200",
    });
    const { message } = await planError({ check: async () => report([pending]) });
    expect(message).toMatch(
      /linux \(own\): data-plane — mtu-blackhole, confirming: the 1400-byte probe was lost\. Fix: ip link set dev potluck0 mtu 1200/,
    );
  });

  it("keeps the router's own reason when diagnostics is slow, throws or finds nothing", async () => {
    const slow = await planError({ check: () => new Promise(() => undefined) }, 200);
    expect(slow.message).toMatch(/linux \(own\): data-plane — .*connection refused/);
    const broken = await planError({ check: async () => Promise.reject(new Error("boom")) });
    expect(broken.message).toMatch(/linux \(own\): data-plane — .*connection refused/);
    const green = await planError({ check: async () => report([layer("data-plane", "ok")]) });
    expect(green.message).toMatch(/linux \(own\): data-plane — .*connection refused/);
  });
});
