import { ReplayCache, PeerClient, PeerCallError } from "@potluck/peer";
import type { Capabilities } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { buildSidecarApp } from "../src/app.js";
import { dashboardRoutes } from "../src/dashboard/routes.js";
import type { HouseholdView } from "../src/dashboard/household.js";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import type { PeerDirectory, PeerRecord } from "../src/peer/directory.js";
import type { CapabilitiesClient } from "../src/routes/models-list.js";
import { Router } from "../src/routing/router.js";
import { newIdentity, recordingUsage } from "./harness.js";
import { testEngineOptions } from "./fixtures.js";

// The household page's routes through app.request(): the machine list it reads (this machine's
// capabilities and the peers' answers, shared with GET /v1/models), the page and its parts, and
// the loopback guard in front of all of them. The page in a browser: tools/test/dashboard.test.ts
// (fakes) and tools/test/e2e/household-page.test.ts (a two-machine lab).

const hardware = (cpus: number, gpu: string | null): Capabilities["hardware"] => ({
  platform: "linux",
  arch: "x64",
  cpus,
  memoryBytes: 8 * 1024 ** 3,
  gpu,
});
const caps = (
  machine: string,
  owner: string,
  models: Capabilities["models"],
  gpu: string | null = null,
): Capabilities => ({
  machine,
  owner,
  version: "0.1.0",
  status: "ready",
  models,
  embedder: null,
  memory: { peerSearchEnabled: false, records: 0 },
  hardware: hardware(4, gpu),
});
const peer = (machine: string, owner = "home"): PeerRecord => ({
  machine,
  owner,
  url: `http://${machine}.invalid:8321`,
  identityPublicKey: "unused",
});
const directory: PeerDirectory = {
  peers: async () => [peer("linux"), peer("ghost"), peer("alice-pc", "alice")],
  signer: async () => undefined,
};

/** linux and alice-pc answer; ghost's mesh is down. Counts the calls, to show the fan-out is shared. */
function fakeClient(): CapabilitiesClient & { calls: number } {
  const client = {
    calls: 0,
    async capabilities(p: PeerRecord): Promise<Capabilities> {
      client.calls++;
      if (p.machine === "ghost") throw new PeerCallError("data-plane", "no answer within 2000 ms");
      if (p.machine === "alice-pc") return caps("alice-pc", "alice", [], "cuda: NVIDIA RTX 4090, 24 GiB");
      return caps("linux", "home", [{ id: "qwen:7b", state: "available", testModel: false, kind: "chat" }]);
    },
  };
  return client;
}

function appFrom(address: string | undefined, client = fakeClient()) {
  const engine = new LlamaEngine(testEngineOptions);
  const usage = recordingUsage();
  const router = new Router({
    machine: "mac",
    owner: "home",
    engine,
    directory,
    client: new PeerClient({ sign: newIdentity("mac").sign }),
    usage,
  });
  const app = buildSidecarApp({
    machine: "mac",
    owner: "home",
    version: "t",
    startedAt: Date.now(),
    isWarm: () => true,
    remoteAddress: () => address,
    engine,
    router,
    directory,
    replay: new ReplayCache(),
    usage,
    peerCapabilities: client,
  });
  return { app, client };
}

describe("GET /dashboard/household", () => {
  it("lists this machine and every peer with state and hardware; a machine that did not answer, with the layer", async () => {
    const { app } = appFrom("127.0.0.1");
    const res = await app.request("/dashboard/household");
    expect(res.status).toBe(200);
    const view = (await res.json()) as HouseholdView;
    expect(view.machine).toBe("mac");
    const byName = Object.fromEntries(view.machines.map((m) => [m.machine, m]));
    expect(view.machines.map((m) => m.machine)).toEqual(["mac", "linux", "ghost", "alice-pc"]);
    expect(byName.mac).toMatchObject({ relation: "local", status: "ready", version: "t" });
    expect(byName.mac?.hardware?.cpus).toBeGreaterThan(0);
    expect(byName.linux).toMatchObject({ relation: "own", status: "ready", hardware: { cpus: 4, gpu: null } });
    expect(byName["alice-pc"]).toMatchObject({
      relation: "peer",
      owner: "alice",
      hardware: { gpu: "cuda: NVIDIA RTX 4090, 24 GiB" },
    });
    expect(byName.ghost).toMatchObject({ status: "unreachable", error: { layer: "data-plane" } });
    expect(byName.ghost?.hardware).toBeUndefined();
  });

  it("shares one fan-out to the peers with GET /v1/models", async () => {
    const { app, client } = appFrom("127.0.0.1");
    await app.request("/v1/models");
    await app.request("/dashboard/household");
    await app.request("/v1/models");
    // Three peers asked once, however many times the page and chat apps read within the cache time.
    expect(client.calls).toBe(3);
    const list = (await (await app.request("/v1/models")).json()) as {
      data: Array<{ id: string; potluck: { machine: string } }>;
    };
    expect(list.data.find((m) => m.id === "qwen:7b")?.potluck.machine).toBe("linux");
  });

  it("lists only this machine when there are no peer calls to make", async () => {
    const local = caps("solo", "home", []);
    const res = await dashboardRoutes({ capabilities: () => local }).request("/dashboard/household");
    const view = (await res.json()) as HouseholdView;
    expect(view.machines).toEqual([
      {
        machine: "solo",
        owner: "home",
        relation: "local",
        status: "ready",
        version: "0.1.0",
        hardware: local.hardware,
      },
    ]);
  });
});

describe("the page and its parts", () => {
  const routes = dashboardRoutes({ capabilities: () => caps("mac", "home", []) });

  it("serves the page, its script and its style under a CSP that forbids inline script and framing", async () => {
    for (const [path, type] of [
      ["/dashboard", "text/html"],
      ["/dashboard/app.js", "text/javascript"],
      ["/dashboard/style.css", "text/css"],
    ] as const) {
      const res = await routes.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toContain(type);
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
    const html = await (await routes.request("/dashboard")).text();
    for (const id of ["machines", "models", "chat-model", "chat-prompt", "chat-reply", "chat-footer", "reports"])
      expect(html).toContain(`id="${id}"`);
    expect(html).not.toMatch(/<script>|<style>|style="/);
  });

  it("its script compiles, loads nothing from elsewhere and never parses text as HTML", async () => {
    const js = await (await routes.request("/dashboard/app.js")).text();
    // Compiles without running: a syntax error in the template would otherwise show only in a browser.
    expect(() => new Function(js)).not.toThrow();
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    const everything =
      js +
      (await (await routes.request("/dashboard")).text()) +
      (await (await routes.request("/dashboard/style.css")).text());
    expect(everything).not.toMatch(/https?:\/\/|@import|url\(/);
    // The prompt goes through the sidecar's own chat endpoint, streamed, so routing picks the machine.
    expect(js).toContain('fetch("/v1/chat/completions"');
    expect(js).toContain("stream: true");
  });
});

describe("the loopback guard in front of the page", () => {
  it("refuses callers off this machine, and a loopback caller under another Host or Origin", async () => {
    for (const path of ["/dashboard", "/dashboard/app.js", "/dashboard/household"]) {
      expect((await appFrom("100.64.0.7").app.request(path)).status, path).toBe(403);
      const { app } = appFrom("127.0.0.1");
      expect((await app.request(path, { headers: { host: "evil.example" } })).status, path).toBe(403);
      expect(
        (await app.request(path, { headers: { host: "127.0.0.1:8321", origin: "http://evil.example" } })).status,
      ).toBe(403);
      // The page's own fetches: Host and Origin are this loopback address.
      expect(
        (await app.request(path, { headers: { host: "127.0.0.1:8321", origin: "http://127.0.0.1:8321" } })).status,
      ).toBe(200);
    }
  });
});
