import { jsonErrors } from "@potluck/service";
import type { DiagnosticsOverview } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { diagnosticsRoutes, type DiagnosticsService } from "../src/routes/diagnostics.js";

// The routes turn the query into the options @potluck/diagnostics takes, and refuse a bad one.
function recording() {
  const asked: unknown[] = [];
  const service: DiagnosticsService = {
    overview: async (options) => {
      asked.push(options);
      return { from: "mac", reports: [], generatedAt: new Date(0).toISOString() } as unknown as DiagnosticsOverview;
    },
    check: async () => {
      throw new Error("not used");
    },
    applyFix: async () => {
      throw new Error("not used");
    },
  };
  return { asked, app: jsonErrors(diagnosticsRoutes(service)) };
}

describe("GET /diagnostics", () => {
  it("passes load=0 on as loadModels false (the household page), and loads by default", async () => {
    const { asked, app } = recording();
    expect((await app.request("/diagnostics?load=0")).status).toBe(200);
    expect((await app.request("/diagnostics?fresh=1")).status).toBe(200);
    expect(asked).toEqual([{ forceFresh: false, loadModels: false }, { forceFresh: true }]);
  });

  it("refuses a load that is not 0 or 1 with a 400 naming it", async () => {
    const { asked, app } = recording();
    const res = await app.request("/diagnostics?load=maybe");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { field: string; message: string } }).error).toMatchObject({
      field: "load",
      message: expect.stringContaining("expected load=1 or load=0"),
    });
    expect(asked).toEqual([]);
  });
});
