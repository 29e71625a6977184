import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runService } from "../../src/cli/commands/service.js";
import { currentHost } from "../../src/service/host.js";
import { nodeOps } from "../../src/service/node-ops.js";
import type { SystemOps } from "../../src/service/steps.js";

const dir = mkdtempSync(join(tmpdir(), "potluck-install-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("install and uninstall on this machine's disk (user scope, systemctl a recording stub)", () => {
  it("writes the units 0644 and the settings file 0600, keeps edited settings, and removes the units", async () => {
    const stubs = join(dir, "stubs");
    mkdirSync(stubs);
    const calls = join(dir, "calls.log");
    for (const program of ["systemctl", "loginctl"]) {
      writeFileSync(join(stubs, program), `#!/bin/sh\necho "${program} $*" >> ${calls}\n`);
      chmodSync(join(stubs, program), 0o755);
    }
    // The real file operations; commands go to the stubs (no systemd runs as PID 1 here).
    const ops: SystemOps = {
      ...nodeOps,
      run: ([program = "", ...args]) => nodeOps.run([join(stubs, program), ...args]),
    };
    const config = join(dir, "config");
    const host = {
      ...currentHost(),
      root: false,
      env: { XDG_CONFIG_HOME: config, USER: "ann", POTLUCK_NATS_URL: "nats://t0ken@hub:4222" },
    };
    const install = () =>
      runService({ flags: new Map([["data-dir", join(dir, "data")]]), positionals: ["install"] }, host, ops, () => {});

    expect(await install()).toBe(0);
    const unit = join(config, "systemd/user/potluck-sidecar.service");
    const envFile = join(config, "potluck/potluck.env");
    expect(statSync(unit).mode & 0o777).toBe(0o644);
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(unit, "utf8")).toContain(`EnvironmentFile=${envFile}\n`);
    expect(readFileSync(envFile, "utf8")).toContain("POTLUCK_NATS_URL=nats://t0ken@hub:4222\n");

    writeFileSync(envFile, "POTLUCK_MACHINE=edited\n");
    expect(await install()).toBe(0);
    expect(readFileSync(envFile, "utf8")).toBe("POTLUCK_MACHINE=edited\n"); // a reinstall keeps the user's settings

    expect(await runService({ flags: new Map(), positionals: ["uninstall"] }, host, ops, () => {})).toBe(0);
    expect(() => statSync(unit)).toThrow();
    expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual([
      "systemctl --user daemon-reload",
      "systemctl --user enable --now potluck-sidecar",
      "loginctl enable-linger ann",
      "systemctl --user daemon-reload",
      "systemctl --user enable --now potluck-sidecar",
      "loginctl enable-linger ann",
      "systemctl --user disable --now potluck-sidecar",
      "systemctl --user daemon-reload",
    ]);
  });
});
