import { generateIdentity } from "@potluck/peer";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DiagnosticsReport, type LayerCode } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, type Hub, type Lab, type LabHost, startHub, waitForOutput } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";
import { parseCheckLines } from "../../bench/diagnostics/lab-setup.js";

// The control-plane layers against the real coordinator: a hub runs NATS and the coordinator, mac
// and linux `potluck join --follow` it (their potluck0 comes from the roster, their heartbeats
// keep them online), and mac runs the diagnostics probes with the roster read from the coordinator.
// No sidecar runs on linux here, so the healthy baseline ends, truthfully, at "connection refused".
const runner = join(repoRoot, "tools/bench/diagnostics/path-check.ts");

let lab: Lab;
let hub: Hub;
let mac: LabHost;

async function diagnose(peer: string, until: LayerCode | "none", watchMs = 60_000): Promise<DiagnosticsReport> {
  const identity = join(mac.runDir, "diag-identity.pem");
  const argv = [
    process.execPath,
    "--import",
    "tsx",
    runner,
    "--from",
    "mac",
    "--peer",
    peer,
    "--identity",
    identity,
    "--local-url",
    "http://127.0.0.1:8321",
    "--coordinator",
    hub.coordinatorUrl,
    "--roster-from-coordinator",
    "--watch-ms",
    String(until === "none" ? 0 : watchMs),
    "--interval-ms",
    "500",
  ];
  if (until !== "none") argv.push("--until", until);
  const res = await mac.exec(argv, { cwd: repoRoot, timeoutMs: watchMs + 120_000 });
  const report = parseCheckLines(res.stdout).at(-1)?.report;
  if (report === undefined) throw new Error(`path-check printed nothing: ${res.stderr.slice(-2000)}`);
  return report;
}

function expectNamed(report: DiagnosticsReport, code: LayerCode, failure: string) {
  const index = report.layers.findIndex((l) => l.code === code);
  expect(report.firstFailure, JSON.stringify(report.layers, null, 1)).toBe(code);
  expect(report.layers[index]).toMatchObject({ status: "failed", failure });
  for (const after of report.layers.slice(index + 1))
    expect(after).toMatchObject({ status: "suppressed", suppressedBy: code });
  return report.layers[index]!;
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "linux"], mesh: false, extraHosts: ["hub"] });
  mac = lab.host("mac");
  mkdirSync(mac.runDir, { recursive: true });
  writeFileSync(join(mac.runDir, "diag-identity.pem"), generateIdentity().privateKeyPem, { mode: 0o600 });
  hub = await startHub(lab);
  for (const name of ["mac", "linux"]) await hub.join(lab.host(name));
  // The first test reads "roster says online": wait for the heartbeats, not just the enrollment.
  await hub.waitOnline(["mac", "linux"]);
  // mac's own sidecar, for the local layer (its roster and peers play no part here).
  const sidecar = mac.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    cwd: repoRoot,
    env: hub.env({
      POTLUCK_MACHINE: "mac",
      POTLUCK_DATA_DIR: join(mac.runDir, "sidecar"),
      POTLUCK_PORT: "8321",
      POTLUCK_BIND: "127.0.0.1",
      POTLUCK_THREADS: "1",
    }),
  });
  await waitForOutput(sidecar, /sidecar listening/, "starting mac's sidecar");
}, 600_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

describe("diagnostics against the real coordinator", () => {
  it("roster and tunnel pass from the coordinator's roster; with no sidecar on linux the data plane is refused", async () => {
    const report = await diagnose("linux", "data-plane", 120_000);
    expectNamed(report, "data-plane", "connection-refused");
    expect(report.layers.slice(1, 5).map((l) => [l.code, l.status])).toEqual([
      ["coordinator", "ok"],
      ["roster", "ok"],
      ["tunnel", "ok"],
      ["path", "ok"],
    ]);
    expect(report.layers[2]?.message).toMatch(
      /linux is in the roster at 100\.\d+\.\d+\.\d+, key current \(roster says online\)/,
    );
  }, 300_000);

  it("peer not in the roster", async () => {
    const layer = expectNamed(await diagnose("windows", "none"), "roster", "unknown-machine");
    expect(layer.fix).toContain(`on windows run potluck join ${hub.coordinatorUrl} TOKEN`);
  }, 300_000);

  it("stale key: the coordinator flags linux once its tunnel key differs from the roster's", async () => {
    expect(
      await hub.admin("POST", "/v1/machines/linux/keys", { wireguardPublicKey: randomBytes(32).toString("base64") }),
    ).toBe(200);
    const report = await diagnose("linux", "roster", 120_000);
    const layer = expectNamed(report, "roster", "stale-key");
    expect(layer.message).toContain("stale WireGuard key");
  }, 300_000);

  it("coordinator down: shown once it has persisted for its time-to-visible", async () => {
    await hub.coordinator.stop();
    const layer = expectNamed(await diagnose("linux", "coordinator"), "coordinator", "coordinator-unreachable");
    expect(layer.message).toContain(`coordinator unreachable at ${hub.coordinatorUrl}`);
    expect(layer.fix).toContain(`curl ${hub.coordinatorUrl}/health`);
  }, 300_000);
});
