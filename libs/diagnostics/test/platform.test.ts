import { describe, expect, it } from "vitest";
import { firewallNotApplicable } from "../src/index.js";
import { FakeClock, fwStatus, healthyWorld, makeDiagnostics } from "./fakes.js";

describe("the fw-watcher off Linux (an injected platform)", () => {
  for (const platform of ["darwin", "win32"] as const) {
    it(`on ${platform}: the fix says not applicable, the watcher is never asked, the path stays usable`, async () => {
      const clock = new FakeClock();
      const world = healthyWorld(clock);
      const missing = fwStatus(true); // what a Linux watcher would report: rules missing
      world.firewall = missing;
      const diagnostics = makeDiagnostics(world, clock, { platform });
      const result = await diagnostics.applyFix("fw-reapply");
      expect(result).toEqual({
        action: "fw-reapply",
        ok: false,
        message: expect.stringContaining(`not applicable on this OS (${platform})`),
      });
      expect(world.firewall).toBe(missing); // reapply was not called
      const report = await diagnostics.check("mac");
      expect(report.usable).toBe(true);
      expect(JSON.stringify(report)).not.toContain("accept rule");
    });
  }

  it("on Linux the watcher is consulted as before", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    world.firewall = fwStatus(true);
    const result = await makeDiagnostics(world, clock, { platform: "linux" }).applyFix("fw-reapply");
    expect(result).toMatchObject({ action: "fw-reapply", ok: true });
    expect(firewallNotApplicable("linux")).toBeUndefined();
  });
});
