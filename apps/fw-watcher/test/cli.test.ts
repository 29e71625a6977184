import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { FwCheckReport, FwReapplyResult, FwStatus } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetns, mullvadTable, ownRules, tailscaleTable, type TestNetns } from "./netns.js";

// The real bin, as systemd runs it, managing a throwaway namespace's ruleset through POTLUCK_FW_NFT.
const bin = join(fileURLToPath(new URL(".", import.meta.url)), "../../../bin/potluck-fw-watcher.mjs");
const execFileP = promisify(execFile);

async function cli(
  ns: TestNetns,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [bin, ...args], {
      env: { ...process.env, POTLUCK_FW_NFT: ns.nftCommand, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

let ns: TestNetns;
beforeAll(async () => {
  ns = await createNetns("cli");
  await ns.load(mullvadTable);
  await ns.load(tailscaleTable);
});
afterAll(async () => {
  await ns?.remove();
});

describe("potluck-fw-watcher CLI", () => {
  it("--check exits 1 and reports missing rules before --install, exits 0 after; ten installs leave three rules", async () => {
    const before = await cli(ns, ["--check", "--json"]);
    expect(before.code).toBe(1);
    expect(FwCheckReport.parse(JSON.parse(before.stdout)).rules.map((r) => r.state)).toEqual([
      "missing",
      "missing",
      "missing",
    ]);
    for (let i = 0; i < 10; i++) expect((await cli(ns, ["--install"])).code).toBe(0);
    expect((await ownRules(ns)).length).toBe(3);
    const after = await cli(ns, ["--check"]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/present\s+inet mullvad output\s+oifname potluck0 accept/);
    expect((await cli(ns, ["--uninstall"])).code).toBe(0);
    expect((await ownRules(ns)).length).toBe(0);
  }, 180_000);

  it("refuses unknown options and two modes with exit 2 and a one-line reason; --help exits 0", async () => {
    const bad = await cli(ns, ["--instal"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown flag --instal/);
    expect((await cli(ns, ["--install", "--uninstall"])).stderr).toMatch(/choose one of/);
    const help = await cli(ns, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--watch/);
    expect((await cli(ns, ["--check", "--interface", "bad name!"])).stderr).toMatch(/POTLUCK_INTERFACE/);
  }, 120_000);

  it("--watch reapplies after a reconnect, logs and counts it, serves /status and /reapply, and removes its rules on SIGTERM", async () => {
    const child = spawn(process.execPath, [bin, "--watch"], {
      env: {
        ...process.env,
        POTLUCK_FW_NFT: ns.nftCommand,
        POTLUCK_FW_PORT: "0",
        POTLUCK_FW_WATCH_INTERVAL: "1",
        POTLUCK_MACHINE: "linux",
        POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = collectJsonLines(child);
    try {
      const listening = await waitForLine(lines, (l) => l.msg === "fw-watcher listening");
      const base = `http://127.0.0.1:${String(listening.port)}`;
      await waitForLine(lines, (l) => l.msg === "accept rule(s) reapplied");
      expect((await ownRules(ns)).length).toBe(3);

      await ns.load(`delete table inet mullvad\n${mullvadTable}`);
      await waitFor(async () => FwStatus.parse(await (await fetch(`${base}/status`)).json()).reapplyCount === 2);
      expect((await ownRules(ns)).length).toBe(3);
      expect(lines.filter((l) => l.msg === "accept rule(s) missing; reapplying").length).toBe(2);
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^potluck_fw_reapply_total 2$/m);

      await ns.load(`delete table ip filter\n${tailscaleTable}`);
      const res = await fetch(`${base}/reapply`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ consent: true, requestedBy: "cli test" }),
      });
      expect(res.status).toBe(200);
      const result = FwReapplyResult.parse(await res.json());
      // The tick may have won the race to the ts-input rule; either way exactly three rules remain.
      expect(result.status.intact).toBe(true);
      expect((await ownRules(ns)).length).toBe(3);

      child.kill("SIGTERM");
      expect(await exitCode(child)).toBe(0);
      expect((await ownRules(ns)).length).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  }, 180_000);
});

type LogLine = Record<string, unknown> & { msg?: string };

function collectJsonLines(child: ChildProcess): LogLine[] {
  const lines: LogLine[] = [];
  let buffer = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        lines.push({ msg: part });
      }
    }
  });
  return lines;
}

async function waitFor(probe: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve(probe()).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function waitForLine(lines: LogLine[], match: (l: LogLine) => boolean): Promise<LogLine> {
  await waitFor(() => lines.some(match));
  return lines.find(match) as LogLine;
}

function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}
