import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, type Lab, type LabHost, labRosterEntry, pollUntil } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// Models load on first use, across the household lab: linux offers the tiny TEST model but has not
// loaded it; mac has no model. `potluck ask` on mac routes to linux, which loads the model while
// the client sees its progress, then the reply streams.

const port = 8321;
const readyMs = 180_000;
const model = "potluck-tiny-test-model-s1-v2";
const identities = { mac: generateIdentity(), linux: generateIdentity() };
let lab: Lab;
let mac: LabHost;
let linux: LabHost;

const dataDir = (host: LabHost) => join(host.runDir, "potluck");

async function startSidecar(host: LabHost, env: NodeJS.ProcessEnv): Promise<void> {
  const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    cwd: repoRoot,
    env: {
      POTLUCK_MACHINE: host.name,
      POTLUCK_OWNER: "home",
      POTLUCK_DATA_DIR: dataDir(host),
      POTLUCK_ROSTER_FILE: join(host.runDir, "roster.json"),
      POTLUCK_PORT: String(port),
      POTLUCK_THREADS: "1",
      POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
      ...env,
    },
  });
  const health = async () =>
    (await host.exec(["curl", "-sf", `http://127.0.0.1:${port}/health`], { timeoutMs: 5_000 })).stdout.includes('"ok"');
  if (!(await pollUntil(health, { timeoutMs: readyMs, intervalMs: 500 })))
    throw new Error(`sidecar on ${host.name} not ready within ${readyMs / 1000} s: ${proc.output().slice(-2000)}`);
}

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
  const entries = [mac, linux].map((host) => labRosterEntry(host, identities[host.name as "mac" | "linux"].publicKey));
  for (const host of [mac, linux]) {
    mkdirSync(dataDir(host), { recursive: true, mode: 0o700 });
    const pem = join(dataDir(host), "identity-ed25519.pem");
    writeFileSync(pem, identities[host.name as "mac" | "linux"].privateKeyPem, { mode: 0o600 });
    chmodSync(pem, 0o600);
    const roster: Roster = { version: 1, machines: entries };
    writeFileSync(join(host.runDir, "roster.json"), JSON.stringify(roster));
  }
  const noModels = join(mac.runDir, "no-models");
  mkdirSync(noModels, { recursive: true });
  await Promise.all([startSidecar(mac, { POTLUCK_MODELS: noModels }), startSidecar(linux, {})]);
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
