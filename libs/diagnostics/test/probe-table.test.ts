import { describe, expect, it } from "vitest";
import {
  buildRegistry,
  CheckRegistry,
  DetailKey,
  DuplicateProbeError,
  layerProbes,
  ProbeTable,
  UnmatchedProbeError,
  type LayerProbe,
} from "../src/index.js";
import { FakeClock, healthyWorld, makeDiagnostics } from "./fakes.js";

describe("the probe table", () => {
  it("has exactly one probe for every registered layer", () => {
    const table = new ProbeTable(buildRegistry());
    expect(table.registry.ordered().map((c) => c.code)).toEqual(layerProbes.map((p) => p.code));
  });

  it("refuses a second probe for a check", () => {
    const [first] = layerProbes;
    expect(() => new ProbeTable(buildRegistry(), [...layerProbes, first as LayerProbe])).toThrow(DuplicateProbeError);
  });

  it("refuses a registered check without a probe", () => {
    expect(
      () =>
        new ProbeTable(
          buildRegistry(),
          layerProbes.filter((p) => p.code !== "path"),
        ),
    ).toThrow(/path is registered but has no probe/);
  });

  it("refuses a probe for a check that is not registered, also when Diagnostics builds the table", () => {
    const registry = new CheckRegistry();
    registry.register(buildRegistry().get("local-sidecar"));
    expect(() => new ProbeTable(registry)).toThrow(UnmatchedProbeError);
    const clock = new FakeClock();
    expect(() => makeDiagnostics(healthyWorld(clock), clock, { registry })).toThrow(
      /coordinator, which is not a registered check/,
    );
  });

  it("refuses a check declaring a key that is not a DetailKey", () => {
    const registry = new CheckRegistry();
    const check = {
      ...buildRegistry().get("local-sidecar"),
      detailKeys: ["health", "nonsense"],
    } as unknown as Parameters<CheckRegistry["register"]>[0];
    expect(() => registry.register(check)).toThrow(/nonsense/);
  });

  it("fails a run whose probe records a key its check does not declare", async () => {
    const clock = new FakeClock();
    const registry = new CheckRegistry();
    registry.register({ ...buildRegistry().get("local-sidecar"), detailKeys: [DetailKey.error] });
    const diagnostics = makeDiagnostics(healthyWorld(clock), clock, {
      registry,
      layerProbes: layerProbes.filter((p) => p.code === "local-sidecar"),
    });
    await expect(diagnostics.check("linux")).rejects.toThrow(/recorded health, which the check does not declare/);
  });
});
