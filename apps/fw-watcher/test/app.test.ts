import { describe, expect, it } from "vitest";
import { buildFwWatcherApp } from "../src/app.js";
import { loadFwWatcherConfig } from "../src/config.js";

describe("fw-watcher app", () => {
  it("answers /health", async () => {
    const res = await buildFwWatcherApp({ startedAt: Date.now() }).request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "fw-watcher" });
  });

  it("stops on a bad port naming the variable", () => {
    expect(() => loadFwWatcherConfig({ POTLUCK_FW_PORT: "x" }, [])).toThrow(/POTLUCK_FW_PORT/);
  });
});
