import { describe, expect, it } from "vitest";
import { buildLedgerApp } from "../src/app.js";
import { loadLedgerConfig } from "../src/config.js";

describe("ledger app", () => {
  it("answers /health", async () => {
    const res = await buildLedgerApp({ startedAt: Date.now() }).request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", service: "ledger" });
  });

  it("stops on a bad port naming the variable", () => {
    expect(() => loadLedgerConfig({ POTLUCK_LEDGER_PORT: "x" }, [])).toThrow(/POTLUCK_LEDGER_PORT/);
  });
});
