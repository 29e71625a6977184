import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { FwStatus } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, httpFrom, type Lab, type LabHost, pollUntil, serveHttp } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";

// The firewall watcher against the lab's VPN fault injectors: HTTP from mac to linux over the
// real WireGuard potluck0, with linux's nftables carrying a Mullvad killswitch or Tailscale's
// CGNAT drop. The watcher runs inside linux's namespace exactly as systemd would run it.
const bin = join(repoRoot, "bin/potluck-fw-watcher.mjs");
const port = 8321;
/** A blocked request is given this long; the same request succeeds within it once allowed. */
const blockedMs = 4_000;
/** Recovery is polled with a deadline generous enough for a loaded 2-core machine. */
const recoverMs = 60_000;

describe("fw-watcher over the lab mesh", () => {
  let lab: Lab;
  let linux: LabHost;
  let url: string;
  beforeAll(async () => {
    lab = await createLab({ hosts: ["mac", "linux"] });
    linux = lab.host("linux");
    await serveHttp(linux, port);
    url = `http://${linux.meshIp}:${port}/`;
  });
  afterAll(async () => {
    await lab?.teardown();
  });

  const get = (timeoutMs = blockedMs) => httpFrom(lab.host("mac"), url, { timeoutMs });
  const recovers = () => pollUntil(async () => (await get()).ok, { timeoutMs: recoverMs, intervalMs: 500 });
  async function watcher(args: string[], env: NodeJS.ProcessEnv = {}) {
    return linux.exec([process.execPath, bin, ...args], { env: { ...process.env, ...env }, timeoutMs: 120_000 });
  }
  async function ruleset(): Promise<string> {
    const result = await linux.exec(["nft", "-j", "list", "ruleset"]);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  for (const vpn of ["mullvad", "tailscale"] as const) {
    it(`${vpn}: HTTP over potluck0 times out before --install, works after, and --uninstall restores the ruleset byte for byte`, async () => {
      expect(await get()).toMatchObject({ ok: true });
      const undo =
        vpn === "mullvad" ? await lab.faults.mullvadKillswitch("linux") : await lab.faults.tailscaleCgnatDrop("linux");
      try {
        expect(await get()).toMatchObject({ ok: false, code: "TIMEOUT" });
        const before = await ruleset();
        const installed = await watcher(["--install"]);
        expect(installed.code, installed.stderr).toBe(0);
        expect(installed.stdout).toMatch(/accept rule\(s\) installed/);
        expect(await recovers()).toBe(true);
        expect((await watcher(["--check"])).code).toBe(0);

        const removed = await watcher(["--uninstall"]);
        expect(removed.code, removed.stderr).toBe(0);
        expect(await ruleset()).toBe(before);
        expect(await get()).toMatchObject({ ok: false, code: "TIMEOUT" });
      } finally {
        await undo();
      }
      expect(await recovers()).toBe(true);
    });
  }

  it("no VPN present: --install changes nothing and says so", async () => {
    const before = await ruleset();
    const result = await watcher(["--install"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/no VPN firewall found.*nothing to do/);
    expect(await ruleset()).toBe(before);
  });

  it("watch mode: a Mullvad reconnect erases the rules, the watcher reapplies them (logged and counted), and HTTP works again", async () => {
    const undo = await lab.faults.mullvadKillswitch("linux");
    const proc = linux.spawn("fw-watcher", [process.execPath, bin, "--watch"], {
      env: {
        ...process.env,
        POTLUCK_FW_WATCH_INTERVAL: "1",
        POTLUCK_FW_PORT: "0",
        POTLUCK_MACHINE: "linux",
        POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
      },
    });
    const logLines = () =>
      proc
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; port?: number });
    const count = (msg: string) => logLines().filter((l) => l.msg === msg).length;
    try {
      expect(
        await pollUntil(() => count("accept rule(s) reapplied") >= 1, { timeoutMs: recoverMs, intervalMs: 200 }),
        proc.output(),
      ).toBe(true);
      expect(await recovers()).toBe(true);
      const statusPort = logLines().find((l) => l.msg === "fw-watcher listening")?.port;
      expect(statusPort).toBeGreaterThan(0);

      // The reconnect recreates the table without the watcher's rules; the second "missing" line proves it saw that.
      await lab.faults.vpnReconnect("linux", "mullvad");
      // Generous deadline; the goal (interval + 1 s) is what tools/bench/firewall measures.
      expect(
        await pollUntil(() => count("accept rule(s) missing; reapplying") >= 2, {
          timeoutMs: recoverMs,
          intervalMs: 200,
        }),
      ).toBe(true);
      expect(await recovers()).toBe(true);
      const status = await linux.exec(["curl", "-sf", `http://127.0.0.1:${String(statusPort)}/status`]);
      expect(status.code, status.stderr).toBe(0);
      expect(FwStatus.parse(JSON.parse(status.stdout))).toMatchObject({
        intact: true,
        reapplyCount: 2,
        vpns: { mullvad: true },
      });
    } finally {
      await proc.stop();
      await undo();
    }
    // Stopped by SIGTERM, the watcher took its rules with it.
    expect(await ruleset()).not.toContain("potluck-fw-watcher");
  });
});
