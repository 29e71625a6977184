import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { potluck } from "../helpers/bin.js";

describe("potluck service (the real bin)", () => {
  it("install --hub --dry-run prints the units and the commands and changes nothing", async () => {
    const envFileExisted = existsSync("/etc/potluck/potluck.env");
    const { code, stdout, stderr } = await potluck("service", "install", "--hub", "--dry-run", "--data-dir", "/srv/p");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^# potluck service install --hub: linux, (system|user) scope\n/);
    expect(stdout).toContain("  | POTLUCK_DATA_DIR=/srv/p\n");
    expect(stdout).toMatch(/potluck-sidecar\.service {2}\(mode 644\)\n/);
    expect(stdout).toMatch(/ExecStart=\S+node \S+\/bin\/potluck-coordinator\.mjs\n/);
    expect(stdout).toMatch(/\nrun systemctl (--user )?enable --now potluck-sidecar /);
    expect(existsSync("/etc/potluck/potluck.env")).toBe(envFileExisted);
  });

  it("a misspelt flag fails naming itself (exit 2)", async () => {
    const { code, stderr } = await potluck("service", "install", "--hubb");
    expect(code).toBe(2);
    expect(stderr).toContain("--hubb");
  });
});
