import { describe, expect, it } from "vitest";
import { buildRegistry, CheckRegistry, DuplicateCheckError, Failure, TimeToVisibleMs } from "../src/index.js";
import { capabilities, FakeClock, healthyWorld, makeDiagnostics, timedOut, type World } from "./fakes.js";

describe("the check registry", () => {
  it("refuses a duplicate code", () => {
    const registry = buildRegistry();
    const first = registry.get("tunnel");
    expect(() => registry.register({ ...first })).toThrow(DuplicateCheckError);
  });

  it("refuses a dependency not registered before the check", () => {
    const registry = new CheckRegistry();
    expect(() =>
      registry.register({
        code: "tunnel",
        title: "Tunnel",
        severity: "high",
        dependsOn: ["roster"],
        timeToVisibleMs: 0,
        okMessage: () => "",
        failures: {},
        detailKeys: [],
      }),
    ).toThrow(/roster/);
  });

  it("registers the nine layers in dependency order, each failure with a fix naming machine and interface", () => {
    const registry = buildRegistry();
    const codes = registry.ordered().map((c) => c.code);
    expect(codes).toEqual([
      "local-sidecar",
      "coordinator",
      "roster",
      "tunnel",
      "path",
      "data-plane",
      "capabilities",
      "model-runtime",
      "first-token",
    ]);
    const ctx = {
      from: "macbook",
      peer: "newtorob",
      interfaceName: "potluck7",
      localPort: 8321,
      peerPort: 8321,
      meshIp: "100.64.0.7",
      coordinatorUrl: "http://hub:8320",
      model: "qwen",
      detail: {},
    };
    for (const check of registry.ordered()) {
      for (const index of check.dependsOn) expect(codes.indexOf(index)).toBeLessThan(codes.indexOf(check.code));
      for (const [name, spec] of Object.entries(check.failures)) {
        const fix = spec.fix(ctx);
        expect(fix.length, `${check.code}/${name}`).toBeGreaterThan(20);
        expect(/macbook|newtorob|potluck7/.test(fix), `${check.code}/${name}: ${fix}`).toBe(true);
      }
    }
  });
});

describe("visibility, caching and suppression", () => {
  it("a firewall flap shorter than its time-to-visible never shows as failed", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const diagnostics = makeDiagnostics(world, clock, { limits: { cacheTtlMs: 0 } });
    const stepMs = 1_000;
    for (let cycle = 0; cycle < 5; cycle++) {
      // Broken for less than the time-to-visible (minus the time a check spends classifying a
      // timeout), checked every second the whole time; it heals by the clock, so a check that is
      // holding a failure to its time-to-visible sees it heal.
      const brokenUntil = clock.ms + TimeToVisibleMs.dataPlane - 2 * stepMs;
      world.smallProbeFailsUntil = brokenUntil;
      while (clock.ms < brokenUntil) {
        const report = await diagnostics.check("linux");
        expect(report.layers.some((l) => l.status === "failed")).toBe(false);
        if (clock.ms < brokenUntil)
          expect(report.layers[5]).toMatchObject({ status: "pending", failure: Failure.firewallDrop });
        clock.advance(stepMs);
      }
      const healed = await diagnostics.check("linux");
      expect(healed.usable).toBe(true);
      clock.advance(stepMs);
    }
  });

  it("a persistent failure shows once it has lasted its time-to-visible, and recovery shows at once", async () => {
    const clock = new FakeClock();
    const world: World = { ...healthyWorld(clock), smallProbe: timedOut() };
    const diagnostics = makeDiagnostics(world, clock, { limits: { cacheTtlMs: 0 } });
    const startedAt = clock.ms;
    let shownAfterMs: number | null = null;
    for (let i = 0; i < 20 && shownAfterMs === null; i++) {
      const report = await diagnostics.check("linux");
      if (report.firstFailure === "data-plane") shownAfterMs = clock.ms - startedAt;
      clock.advance(500);
    }
    // Shown on the first check after the time-to-visible (each check also spends fake time classifying).
    expect(shownAfterMs).toBeGreaterThanOrEqual(TimeToVisibleMs.dataPlane);
    expect(shownAfterMs).toBeLessThanOrEqual(TimeToVisibleMs.dataPlane + 1_000);
    world.smallProbe = "ok";
    expect((await diagnostics.check("linux")).usable).toBe(true);
    // Broken again: the clock starts over, it does not inherit the old failure's age.
    world.smallProbe = timedOut();
    expect((await diagnostics.check("linux")).layers[5]!.status).toBe("pending");
  });

  it("a persistent failure is named the moment it turns visible, not a check later", async () => {
    const clock = new FakeClock();
    const world: World = { ...healthyWorld(clock), smallProbe: timedOut() };
    const diagnostics = makeDiagnostics(world, clock, { limits: { cacheTtlMs: 0 } });
    const startedAt = clock.ms;
    expect((await diagnostics.check("linux")).layers[5]!.status).toBe("pending");
    // The next check starts with the failure still short of visible: it holds, rechecking, until it is.
    clock.ms = startedAt + TimeToVisibleMs.dataPlane - 2_000;
    const report = await diagnostics.check("linux");
    expect(report.layers[5]).toMatchObject({ status: "failed", failure: Failure.firewallDrop });
    expect(report.layers[5]!.brokenForMs).toBeGreaterThanOrEqual(TimeToVisibleMs.dataPlane);
    expect(world.calls.filter((c) => c === "probe:32").length).toBeGreaterThan(2);
  });

  it("a pending failure suppresses downstream layers with its code and keeps the path unusable", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbe: timedOut() };
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.usable).toBe(false);
    expect(report.firstFailure).toBeNull();
    for (const layer of report.layers.slice(6))
      expect(layer).toMatchObject({ status: "suppressed", suppressedBy: "data-plane" });
    expect(world.calls).not.toContain("capabilities");
  });

  it("a fault that clears while a timeout is being classified is not reported", async () => {
    const clock = new FakeClock();
    const world = { ...healthyWorld(clock), smallProbeFailsOnce: true };
    const report = await makeDiagnostics(world, clock).check("linux");
    expect(report.usable).toBe(true);
    expect(world.calls.filter((c) => c === "probe:32")).toHaveLength(2);
  });

  it("caches briefly, and forceFresh probes again", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const diagnostics = makeDiagnostics(world, clock);
    await diagnostics.check("linux");
    const probesAfterFirst = world.calls.length;
    const again = await diagnostics.check("linux");
    expect(again.cached).toBe(true);
    expect(world.calls.length).toBe(probesAfterFirst);
    world.smallProbe = timedOut();
    const fresh = await diagnostics.check("linux", { forceFresh: true });
    expect(fresh.cached).toBe(false);
    expect(fresh.usable).toBe(false);
    clock.advance(60_000);
    expect((await diagnostics.check("linux")).cached).toBe(false);
  });

  it("concurrent callers share one in-flight check", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const diagnostics = makeDiagnostics(world, clock);
    await Promise.all([diagnostics.check("linux"), diagnostics.check("linux"), diagnostics.check("linux")]);
    expect(world.calls.filter((c) => c === "infer")).toHaveLength(1);
  });

  it("reuses a recent first token unless forced fresh", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const diagnostics = makeDiagnostics(world, clock);
    await diagnostics.check("linux");
    clock.advance(5_000);
    const reused = await diagnostics.check("linux");
    expect(reused.layers[8]!.status).toBe("ok");
    expect(world.calls.filter((c) => c === "infer")).toHaveLength(1);
    await diagnostics.check("linux", { forceFresh: true });
    expect(world.calls.filter((c) => c === "infer")).toHaveLength(2);
  });

  it("says a reused first token is reused, with its age, not as a time in ms", async () => {
    const clock = new FakeClock();
    const diagnostics = makeDiagnostics(healthyWorld(clock), clock);
    await diagnostics.check("linux");
    clock.advance(7_000);
    const reused = await diagnostics.check("linux", { model: "tiny" });
    expect(reused.layers[8]!.message).toBe("first token from linux 7 s ago (reused, not generated again)");
  });

  it("with loadModels false, does not load a model that is only available to check it, and says so", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    world.capabilities = capabilities([{ id: "tiny", state: "available", testModel: true }]);
    const diagnostics = makeDiagnostics(world, clock);
    const looked = await diagnostics.check("linux", { loadModels: false });
    expect(looked.layers[8]).toMatchObject({ status: "skipped" });
    expect(looked.layers[8]!.message).toMatch(/^tiny is available on linux but not loaded; a prompt loads it first/);
    expect(looked.usable).toBe(true);
    expect(world.calls.filter((c) => c === "infer")).toHaveLength(0);
    // The default does what a prompt would: it asks for the token, which loads the model.
    await diagnostics.check("linux");
    expect(world.calls.filter((c) => c === "infer")).toHaveLength(1);
  });

  it("the overview covers this machine and every roster peer", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const overview = await makeDiagnostics(world, clock).overview();
    expect(overview.reports.map((r) => r.peer)).toEqual(["mac", "linux"]);
    expect(overview.reports.every((r) => r.usable)).toBe(true);
  });

  it("applies the firewall fix and drops cached answers", async () => {
    const clock = new FakeClock();
    const world = healthyWorld(clock);
    const diagnostics = makeDiagnostics(world, clock);
    await diagnostics.check("linux");
    const result = await diagnostics.applyFix("fw-reapply");
    expect(result).toMatchObject({ action: "fw-reapply", ok: true });
    expect((await diagnostics.check("linux")).cached).toBe(false);
  });
});
