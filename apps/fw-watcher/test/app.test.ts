import { FwReapplyResult, FwStatus, type FwReapplyResult as Result, type FwStatus as Status } from "@potluck/protocol";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { buildFwWatcherApp } from "../src/app.js";
import { loadFwWatcherConfig } from "../src/config.js";
import { createMetrics } from "../src/metrics.js";

const status: Status = {
  machine: "linux",
  interfaceName: "potluck0",
  vpns: { tailscale: false, mullvad: true },
  rules: [{ family: "inet", table: "mullvad", chain: "input", rule: "iifname potluck0 accept", state: "present" }],
  intact: true,
  lastReapplyAt: null,
  reapplyCount: 0,
  lastError: null,
  checkedAt: new Date().toISOString(),
};

function appWith(
  reapply: (by: string) => Promise<Result>,
  registry = new Registry(),
  refresh: () => Promise<Status> = async () => status,
) {
  return buildFwWatcherApp({ startedAt: Date.now(), status: () => status, refresh, reapply, registry });
}

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", host: "127.0.0.1:8323", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

describe("fw-watcher app", () => {
  it("answers /health and /status with a valid FwStatus", async () => {
    const app = appWith(async () => ({ added: 0, removed: 0, status }));
    expect((await app.request("/health")).status).toBe(200);
    const res = await app.request("/status");
    expect(res.status).toBe(200);
    expect(FwStatus.parse(await res.json())).toEqual(status);
  });

  it("reads the ruleset afresh for /status?fresh=1, and says why when it cannot", async () => {
    let reads = 0;
    const fresh: Status = { ...status, intact: false, rules: [{ ...status.rules[0]!, state: "missing" }] };
    const app = appWith(
      async () => ({ added: 0, removed: 0, status }),
      new Registry(),
      async () => {
        reads += 1;
        return fresh;
      },
    );
    expect(FwStatus.parse(await (await app.request("/status")).json()).intact).toBe(true);
    expect(reads).toBe(0);
    const res = await app.request("/status?fresh=1");
    expect(res.status).toBe(200);
    expect(FwStatus.parse(await res.json()).intact).toBe(false);
    expect(reads).toBe(1);
    const failing = appWith(
      async () => ({ added: 0, removed: 0, status }),
      new Registry(),
      async () => {
        throw new Error("nft: Operation not permitted");
      },
    );
    const broken = await failing.request("/status?fresh=1");
    expect(broken.status).toBe(503);
    expect(JSON.stringify(await broken.json())).toContain("reading the ruleset: nft: Operation not permitted");
  });

  it("reapplies on POST /reapply with consent, naming the requester", async () => {
    const asked: string[] = [];
    const app = appWith(async (by) => {
      asked.push(by);
      return { added: 2, removed: 0, status: { ...status, reapplyCount: 1 } };
    });
    const res = await app.request("/reapply", post({ consent: true, requestedBy: "potluck doctor" }));
    expect(res.status).toBe(200);
    expect(FwReapplyResult.parse(await res.json()).added).toBe(2);
    expect(asked).toEqual(["potluck doctor"]);
  });

  it("refuses a reapply without consent, naming the field, and never calls nft", async () => {
    let called = false;
    const app = appWith(async () => {
      called = true;
      return { added: 0, removed: 0, status };
    });
    const res = await app.request("/reapply", post({}));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { field: "consent" } });
    const bad = await app.request("/reapply", post("{not json"));
    expect(bad.status).toBe(400);
    expect(called).toBe(false);
  });

  it("answers 503 (not 500) when nft fails during a reapply", async () => {
    const app = appWith(async () => {
      throw new Error("inserting accept rules: nft exited 1: Operation not permitted");
    });
    const res = await app.request("/reapply", post({ consent: true }));
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      error: { code: "unavailable", message: expect.stringMatching(/Operation not permitted/) },
    });
  });

  it("refuses requests addressed to a non-loopback host name (DNS rebinding)", async () => {
    const app = appWith(async () => ({ added: 0, removed: 0, status }));
    const res = await app.request("/reapply", post({ consent: true }, { host: "evil.example:8323" }));
    expect(res.status).toBe(403);
    expect((await app.request("/status", { headers: { host: "localhost:8323" } })).status).toBe(200);
  });

  it("refuses a page of another origin even under a loopback Host", async () => {
    const app = appWith(async () => ({ added: 0, removed: 0, status }));
    const res = await app.request("/reapply", post({ consent: true }, { origin: "http://evil.example" }));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "forbidden", field: "origin" } });
  });

  it("serves Prometheus metrics that follow the status", async () => {
    const metrics = createMetrics();
    metrics.observe({ ...status, reapplyCount: 3, rules: [{ ...status.rules[0]!, state: "missing" }] });
    const app = appWith(async () => ({ added: 0, removed: 0, status }), metrics.registry);
    const text = await (await app.request("/metrics")).text();
    expect(text).toMatch(/^potluck_fw_reapply_total 3$/m);
    expect(text).toMatch(/^potluck_fw_rules_missing 1$/m);
    expect(text).toMatch(/^potluck_fw_vpn_detected\{vpn="mullvad"\} 1$/m);
    expect(text).toMatch(/^potluck_fw_last_check_timestamp_seconds \d+/m);
  });

  it("stops on a bad port or interval naming the variable", () => {
    expect(() => loadFwWatcherConfig({ POTLUCK_FW_PORT: "x" }, [])).toThrow(/POTLUCK_FW_PORT/);
    expect(() => loadFwWatcherConfig({}, ["--fw-watch-interval", "0"])).toThrow(/POTLUCK_FW_WATCH_INTERVAL/);
    expect(loadFwWatcherConfig({}, ["--interface", "wgmesh"]).POTLUCK_INTERFACE).toBe("wgmesh");
  });
});
