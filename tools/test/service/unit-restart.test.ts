import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { httpOk } from "../../src/lib/net.js";
import { waitFor } from "../../src/lib/supervisor.js";
import { renderEnvFile } from "../../src/service/env-file.js";
import { currentHost } from "../../src/service/host.js";
import { planServices } from "../../src/service/plan.js";
import { shouldRestart, superviseUnit, type SupervisedUnit } from "../../src/service/unit-supervisor.js";
import { parseUnit, systemdUnit } from "../../src/service/units/systemd.js";

const dir = mkdtempSync(join(tmpdir(), "potluck-unit-restart-"));
let unit: SupervisedUnit | undefined;
afterAll(async () => {
  await unit?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()));
    });
  });
}

describe("a generated unit under a supervisor that honours Restart= and RestartSec=", () => {
  it("the sidecar killed with SIGKILL comes back and answers /health again", async () => {
    const port = await freePort();
    const envFile = join(dir, "potluck.env");
    writeFileSync(
      envFile,
      renderEnvFile(join(dir, "data"), [
        ["POTLUCK_PORT", String(port)],
        ["POTLUCK_BIND", "127.0.0.1"],
        ["POTLUCK_OLLAMA_PORT", "0"],
        ["POTLUCK_CPU_PIN", "off"],
        ["POTLUCK_MACHINE", "unit-restart"],
        // Nothing listens on port 1: the sidecar runs alone and says it waits for NATS.
        ["POTLUCK_NATS_URL", "nats://127.0.0.1:1"],
      ]),
      { mode: 0o600 },
    );
    const plan = planServices({ ...currentHost(), root: true }, { hub: false, dataDir: join(dir, "data") });
    const spec = plan.services.find((s) => s.key === "sidecar");
    if (spec === undefined) throw new Error("no sidecar in the plan");
    const text = systemdUnit(spec, { scope: "system", envFile });
    expect(parseUnit(text).Service).toMatchObject({ Restart: "on-failure", RestartSec: "5" });

    const lines: string[] = [];
    unit = superviseUnit(text, { name: "sidecar", onLine: (_n, line) => lines.push(line) });
    const health = `http://127.0.0.1:${port}/health`;
    expect(await waitFor(() => httpOk(health), { timeoutMs: 60_000 }), lines.slice(-20).join("\n")).toBe(true);

    const first = unit.current();
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    expect(await waitFor(() => httpOk(health), { timeoutMs: 60_000 }), lines.slice(-20).join("\n")).toBe(true);
    expect(unit.restarts()).toBe(1);
    expect(unit.current().child.pid).not.toBe(first.child.pid);
    // RestartSec=5 honoured: not back before the delay.
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(5000);
  }, 180_000); // two sidecar starts (tiny model probe-loaded each time) on a loaded 2-core machine

  it("restarts per systemd's table: on-failure skips a clean exit and SIGTERM", () => {
    expect(shouldRestart("on-failure", "SIGKILL")).toBe(true);
    expect(shouldRestart("on-failure", 1)).toBe(true);
    expect(shouldRestart("on-failure", 0)).toBe(false);
    expect(shouldRestart("on-failure", "SIGTERM")).toBe(false);
    expect(shouldRestart("always", 0)).toBe(true);
    expect(shouldRestart("no", "SIGKILL")).toBe(false);
  });
});
