import { request } from "node:http";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { Diagnostics, ProbeError, type Probes } from "@potluck/diagnostics";
import { toErrorResponse, type Capabilities, type FwStatus, type RosterEntry } from "@potluck/protocol";
// Tools may drive apps (depConstraints allow type:app); Nx forbids app imports unconditionally (see
// tools/src/model/tiny.ts).
import { dashboardRoutes, diagnosticsRoutes, modelsListRoutes } from "@potluck/sidecar";
import { Hono } from "hono";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../src/lib/repo.js";

// The household page in headless Chromium, on fakes. The blocked peer comes from an injected probe
// set (a firewall dropping linux's mesh traffic, the local fw-watcher missing its rules); the real
// classification of that state is proven in the lab (tools/test/e2e/diagnostics-*.test.ts). The
// household's models come from the real model-list route over fake peers, one with a hostile model
// id; the chat endpoint is a fake that streams as the sidecar's does. Everything else is real: the
// check model, the routes, the page, its script and the browser. Against two real sidecars:
// tools/test/e2e/household-page.test.ts.

const key = (c: string) => `${c.repeat(43)}=`;
const entry = (name: string, meshIp: string, wg: string): RosterEntry => ({
  id: name,
  name,
  owner: "home",
  meshIp,
  wireguardPublicKey: wg as RosterEntry["wireguardPublicKey"],
  identityPublicKey: wg as RosterEntry["identityPublicKey"],
  endpoints: [],
  state: "online",
  lastHeartbeatAt: null,
  staleKey: false,
});
const caps = (machine: string, models: Capabilities["models"]): Capabilities => ({
  machine,
  owner: "home",
  version: "0.1.0",
  status: "ready",
  models,
  embedder: null,
  memory: { peerSearchEnabled: false, records: 0 },
  hardware: { platform: "linux", arch: "x64", cpus: 2, memoryBytes: 1e9, gpu: null },
});
const fw = (intact: boolean): FwStatus => ({
  machine: "mac",
  interfaceName: "potluck0",
  vpns: { tailscale: false, mullvad: true },
  intact,
  rules: ["input", "output"].map((chain) => ({
    family: "inet" as const,
    table: "mullvad",
    chain,
    rule: `${chain === "input" ? "iif" : "oif"}name potluck0 accept`,
    state: intact ? ("present" as const) : ("missing" as const),
  })),
  lastReapplyAt: null,
  reapplyCount: 0,
  lastError: null,
  checkedAt: new Date().toISOString(),
});
/** Markup in a runtime's reason must show as text, never run. */
const hostileReason = `<img src=x onerror="document.body.dataset.pwned='1'"> CUDA error`;

const world = { firewallIntact: false, reapplyCalls: 0 };

function probes(): Probes {
  const timeout = () => new ProbeError("timeout", "no answer within the time budget");
  return {
    local: { health: async () => ({ status: "ok", machine: "mac", uptimeS: 1 }) },
    roster: {
      list: async () => [
        entry("mac", "100.64.0.2", key("m")),
        entry("linux", "100.64.0.3", key("l")),
        entry("windows", "100.64.0.4", key("w")),
      ],
      lookup: async (name) =>
        (await probes().roster!.list(AbortSignal.timeout(1000))).find((e) => e.name === name) ?? null,
    },
    tunnel: {
      peers: async () =>
        ["l", "w"].map((c) => ({
          publicKey: key(c),
          endpoint: "198.18.0.9:51820",
          allowedIps: [],
          latestHandshakeAtMs: Date.now() - 5_000,
          rxBytes: 0,
          txBytes: 0,
        })),
    },
    peer: {
      nudge: async () => undefined,
      probe: async (target) => {
        if (target.name === "linux" && !world.firewallIntact) throw timeout();
      },
      capabilities: async (target) =>
        target.name === "windows"
          ? caps("windows", [{ id: "qwen", state: "failed", reason: hostileReason, testModel: false }])
          : caps(target.name, [{ id: "tiny", state: "ready", testModel: true }]),
      firstToken: async (target) => ({ text: "hi", servedBy: target.name }),
    },
    firewall: {
      status: async () => fw(world.firewallIntact),
      reapply: async () => {
        world.reapplyCalls++;
        world.firewallIntact = true;
        return fw(true);
      },
    },
  };
}

/** A model id is whatever a peer's files are called: markup in it must show as text. */
const hostileModel = `<img src=x onerror="document.body.dataset.pwned='2'">:latest`;
const chatBodies: unknown[] = [];

/** The household seen from mac: linux has the tiny model loaded, windows the hostile one. */
function householdApp() {
  const peerRecord = (machine: string) => ({
    machine,
    owner: "home",
    url: "http://unused.invalid",
    identityPublicKey: "k",
  });
  const client = {
    capabilities: async (p: { machine: string }) =>
      p.machine === "windows"
        ? caps("windows", [{ id: hostileModel, state: "available", testModel: false, kind: "chat" as const }])
        : caps("linux", [{ id: "tiny", state: "ready", testModel: true, kind: "chat" as const }]),
  };
  const directory = { peers: async () => [peerRecord("linux"), peerRecord("windows")], signer: async () => undefined };
  const engine = { list: () => [] };
  const models = modelsListRoutes({ machine: "mac", owner: "home", engine, directory, client });
  const self = caps("mac", []);
  const peers = async () =>
    Promise.all(
      (await directory.peers()).map(async (p) => {
        const c = await client.capabilities(p);
        const about = { version: c.version, status: c.status, hardware: c.hardware };
        return {
          machine: p.machine,
          owner: "home",
          relation: "own" as const,
          status: "ok" as const,
          models: c.models,
          about,
        };
      }),
    );
  return new Hono()
    .route("/", models)
    .route("/", dashboardRoutes({ capabilities: () => self, peers }))
    .post("/v1/chat/completions", async (c) => {
      const body = (await c.req.json()) as { model: string };
      chatBodies.push(body);
      if (body.model === hostileModel)
        return c.json(
          { error: { message: `${body.model} needs 9.0 GiB, 2.0 GiB free`, code: "model_too_large" } },
          507,
        );
      const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 0, model: "tiny" };
      const events = [
        ": potluck loading tiny 50%\n\n",
        ...["Hel", "lo <b>there</b>"].map(
          (t) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: t } }] })}\n\n`,
        ),
        `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }, served_by: "linux", potluck: { served_by: "linux", route: "own", owner: "home", test_model: true, finished_at: new Date().toISOString() } })}\n\n`,
        "data: [DONE]\n\n",
      ];
      return c.body(events.join(""), 200, { "content-type": "text/event-stream", "x-potluck-served-by": "linux" });
    });
}

function postWithHost(url: string, host: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { host, "content-type": "application/json" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the diagnostics dashboard in headless Chromium", () => {
  let server: ServerType;
  let base = "";
  let browser: Browser;
  beforeAll(async () => {
    const diagnostics = new Diagnostics({
      from: "mac",
      interfaceName: "potluck0",
      localPort: 8321,
      peerPort: 8321,
      probes: probes(),
    });
    const app = new Hono().route("/", diagnosticsRoutes(diagnostics)).route("/", householdApp());
    // The sidecar's own error handler, so thrown PotluckHttpErrors answer as they do there.
    app.onError((err, c) => {
      const { status, body } = toErrorResponse(err);
      return c.json(body, status as 400);
    });
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve());
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("names the failing layer of a blocked peer with its fix, suppresses the rest, and reapplies only after consent", async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${base}/dashboard`);
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(response?.headers()["x-frame-options"]).toBe("DENY");

    const linux = page.locator('section[data-peer="linux"]');
    // The firewall failure shows once it has persisted for its time-to-visible; the page refreshes itself.
    const failed = linux.locator('li[data-layer="data-plane"][data-status="failed"]');
    await failed.waitFor({ timeout: 60_000 });
    await expect(failed.locator(".message").textContent()).resolves.toContain(
      "firewall likely blocking mesh traffic on potluck0",
    );
    const fix = await failed.locator(".fix code").textContent();
    expect(fix).toContain("sudo potluck-fw-watcher --install --interface potluck0");
    expect(fix).toContain("nft insert rule inet mullvad input iifname potluck0 accept");
    for (const layer of ["capabilities", "model-runtime", "first-token"]) {
      await expect(linux.locator(`li[data-layer="${layer}"]`).getAttribute("data-status")).resolves.toBe("suppressed");
    }
    await expect(linux.locator("h3 .verdict").textContent()).resolves.toBe("blocked at Peer data plane");
    await expect(page.locator('section[data-peer="mac"]').getAttribute("data-usable")).resolves.toBe("true");

    // The runtime's reason is shown as text: the markup in it is not parsed.
    const windowsRuntime = page.locator('section[data-peer="windows"] li[data-layer="model-runtime"]');
    await expect(windowsRuntime.getAttribute("data-status")).resolves.toBe("failed");
    await expect(windowsRuntime.locator(".message").textContent()).resolves.toContain(hostileReason);
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();

    // Consent: offering opens a confirmation; nothing changes until the person says yes.
    await failed.locator('button[data-action="offer-fw-reapply"]').click();
    const confirm = page.locator('button[data-action="confirm-fw-reapply"]');
    await confirm.waitFor();
    expect(world.reapplyCalls).toBe(0);
    await confirm.click();
    await page.locator('section[data-peer="linux"][data-usable="true"]').waitFor({ timeout: 60_000 });
    expect(world.reapplyCalls).toBe(1);
    await page.close();
  });

  it("lists the household's machines and models as text, and streams a prompt's reply with its footer", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/dashboard`);
    await page.locator('#machines tr[data-machine="windows"]').waitFor({ timeout: 30_000 });
    expect(
      await page.locator("#machines tbody tr").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-machine"))),
    ).toEqual(["mac", "linux", "windows"]);
    await expect(page.locator('#machines tr[data-machine="linux"] td.hardware').textContent()).resolves.toBe(
      "linux x64 · 2 CPUs · 953.7 MiB RAM · no GPU in use",
    );
    const hostileRow = page.locator("#models tbody tr").filter({ hasText: "onerror" });
    await expect(hostileRow.locator("td.model").textContent()).resolves.toBe(hostileModel);
    await expect(hostileRow.getAttribute("data-state")).resolves.toBe("available");
    await expect(page.locator('#models tr[data-model="tiny"]').getAttribute("data-state")).resolves.toBe("ready");
    const options = await page
      .locator("#chat-model option")
      .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(expect.arrayContaining(["tiny", hostileModel]));
    expect(await page.locator("main img").count()).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();

    await page.selectOption("#chat-model", "tiny");
    await page.fill("#chat-prompt", "Hello");
    await page.fill("#chat-max-tokens", "8");
    // Every text the progress line shows, to see the load report the stream carries.
    await page.evaluate(() => {
      const progress = document.getElementById("chat-progress")!;
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      new MutationObserver(() => seen.push(progress.textContent ?? "")).observe(progress, { childList: true });
    });
    await page.click("#chat-send");
    const footer = page.locator('#chat-footer[data-served-by="linux"]');
    await footer.waitFor({ timeout: 30_000 });
    await expect(footer.textContent()).resolves.toMatch(
      /^— served by linux \(own machine\) · tiny \(TEST MODEL: random weights\) · 2 tokens · [\d.]+ s$/,
    );
    expect(await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen)).toEqual(
      expect.arrayContaining(["asking tiny…", "routed to linux…", "loading tiny… 50%"]),
    );
    // The reply's text is text, markup included.
    await expect(page.locator("#chat-reply").textContent()).resolves.toBe("Hello <b>there</b>");
    expect(await page.locator("#chat-reply b").count()).toBe(0);
    await page.screenshot({ path: join(repoRoot, ".test-results/dashboard/household-fakes.png"), fullPage: true });
    // A refusal is shown with the sidecar's own words, as text.
    await page.selectOption("#chat-model", hostileModel);
    await page.click("#chat-send");
    await page.locator("#chat-progress", { hasText: "no reply" }).waitFor({ timeout: 30_000 });
    await expect(page.locator("#chat-progress").textContent()).resolves.toBe(
      `no reply: ${hostileModel} needs 9.0 GiB, 2.0 GiB free`,
    );
    await expect(page.locator("#chat-footer").textContent()).resolves.toBe("");
    expect(await page.locator("main img").count()).toBe(0);
    expect(chatBodies.map((b) => (b as { model: string }).model)).toEqual(["tiny", hostileModel]);
    await page.selectOption("#chat-model", "tiny");
    // A refresh in which linux missed its answer drops its model; the choice returns with it.
    const without = await page.evaluate(() => {
      const w = window as unknown as { renderPicker(list: unknown): void };
      const only = (ids: string[]) => ({
        data: ids.map((id) => ({
          id,
          potluck: { kind: "chat", state: "ready", locations: [{ machine: "x", state: "ready" }] },
        })),
      });
      w.renderPicker(only(["other"]));
      const missing = (document.getElementById("chat-model") as HTMLSelectElement).value;
      w.renderPicker(only(["other", "tiny"]));
      return [missing, (document.getElementById("chat-model") as HTMLSelectElement).value];
    });
    expect(without).toEqual(["other", "tiny"]);
    expect(chatBodies[0]).toMatchObject({
      model: "tiny",
      stream: true,
      max_tokens: 8,
      messages: [{ role: "user", content: "Hello" }],
    });
    await page.close();
  });

  it("asks nothing while the tab is hidden, and catches up when it is shown", async () => {
    const page = await browser.newPage();
    // Hidden from the start: the page's loops must not fan out to peers or run first-token checks.
    await page.addInitScript(() => {
      let hidden = true;
      Object.defineProperty(document, "hidden", { get: () => hidden });
      (window as unknown as { show(): void }).show = () => {
        hidden = false;
        document.dispatchEvent(new Event("visibilitychange"));
      };
    });
    const asked: string[] = [];
    const searches: string[] = [];
    page.on("request", (r) => {
      const url = new URL(r.url());
      asked.push(url.pathname);
      searches.push(url.pathname + url.search);
    });
    await page.goto(`${base}/dashboard`);
    await page.waitForTimeout(4_500);
    expect(asked.filter((p) => p === "/diagnostics" || p === "/v1/models" || p === "/dashboard/household")).toEqual([]);
    await page.evaluate(() => (window as unknown as { show(): void }).show());
    await page.locator('#machines tr[data-machine="linux"]').waitFor({ timeout: 30_000 });
    expect(asked).toEqual(expect.arrayContaining(["/diagnostics", "/v1/models", "/dashboard/household"]));
    // Looking does not load models: the page asks the diagnosis not to load one just to check it.
    expect(searches.filter((p) => p.startsWith("/diagnostics"))).toEqual(
      expect.arrayContaining(["/diagnostics?load=0"]),
    );
    expect(searches.filter((p) => p === "/diagnostics")).toEqual([]);
    await page.close();
  });

  it("the fix route refuses a request without consent or to a non-loopback host", async () => {
    const noConsent = await fetch(`${base}/diagnostics/fix`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ action: "fw-reapply" }),
    });
    expect(noConsent.status).toBe(400);
    expect(((await noConsent.json()) as { error: { field: string } }).error.field).toBe("consent");
    // fetch may not set Host; a DNS-rebinding page would arrive with its own name in it.
    expect(
      await postWithHost(
        `${base}/diagnostics/fix`,
        "evil.example",
        JSON.stringify({ action: "fw-reapply", consent: true }),
      ),
    ).toBe(403);
    expect(world.reapplyCalls).toBe(1);
    const badPeer = await fetch(`${base}/diagnostics/NOT_A_NAME`);
    expect(badPeer.status).toBe(400);
    expect(((await badPeer.json()) as { error: { field: string } }).error.field).toBe("peer");
    const badQuery = await fetch(`${base}/diagnostics?fresh=maybe`);
    expect(badQuery.status).toBe(400);
  });
});
