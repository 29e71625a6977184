import { describe, expect, it } from "vitest";
import { buildCoordinatorApp } from "../src/app.js";
import { loadCoordinatorConfig } from "../src/config.js";

describe("coordinator app", () => {
  it("answers /health", async () => {
    const res = await buildCoordinatorApp({ startedAt: Date.now() }).request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "coordinator" });
  });

  it("stops on a bad port naming the variable", () => {
    expect(() => loadCoordinatorConfig({ POTLUCK_COORDINATOR_PORT: "x" }, [])).toThrow(/POTLUCK_COORDINATOR_PORT/);
  });
});
