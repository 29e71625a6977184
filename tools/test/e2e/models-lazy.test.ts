import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  type Lab,
  type LabHost,
  rosterSidecarPort,
  seedRosterHousehold,
  startRosterSidecar,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// Models load on first use, across the household lab: linux offers the tiny TEST model but has not
// loaded it; mac has no model. `potluck ask` on mac routes to linux, which loads the model while
// the client sees its progress, then the reply streams.

const port = rosterSidecarPort;
const model = "potluck-tiny-test-model-s1-v2";
let lab: Lab;
let mac: LabHost;
let linux: LabHost;

/** The model's state on `host`, from its own /v1/models (served to loopback only). */
async function stateOn(host: LabHost): Promise<string | undefined> {
  const out = await host.exec(["curl", "-sf", `http://127.0.0.1:${port}/v1/models`], { timeoutMs: 10_000 });
  const body = JSON.parse(out.stdout) as { data: Array<{ id: string; potluck: { state: string } }> };
  return body.data.find((m) => m.id === model)?.potluck.state;
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "linux"] });
  mac = lab.host("mac");
  linux = lab.host("linux");
  seedRosterHousehold([mac, linux]);
  const noModels = join(mac.runDir, "no-models");
  mkdirSync(noModels, { recursive: true });
  await Promise.all([startRosterSidecar(mac, { POTLUCK_MODELS: noModels }), startRosterSidecar(linux)]);
}, 400_000);

afterAll(async () => {
  await lab?.teardown();
});

describe("a model available but not loaded on another lab machine", () => {
  it("is reached by routing from mac: linux loads it, the client sees the progress, the reply streams", async () => {
    expect(await stateOn(linux)).toBe("available");
    const result = await mac.exec(
      [process.execPath, join(repoRoot, "bin/potluck.mjs"), "ask", "--model", model, "--max-tokens", "8", "Hello"],
      { cwd: repoRoot, timeoutMs: 180_000, env: { POTLUCK_PORT: String(port) } },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`loading ${model}… \\d+%`));
    expect(result.stderr).toMatch(/… 100%/);
    expect(result.stdout).toMatch(/— served by linux \(own machine\) · potluck-tiny-test-model-s1-v2 .* · 8 tokens/);
    expect(await stateOn(linux)).toBe("ready");
    // Warm now: no progress the second time.
    const warm = await mac.exec(
      [process.execPath, join(repoRoot, "bin/potluck.mjs"), "ask", "--model", model, "--max-tokens", "4", "Again"],
      { cwd: repoRoot, timeoutMs: 120_000, env: { POTLUCK_PORT: String(port) } },
    );
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).not.toMatch(/loading/);
  }, 300_000);
});
