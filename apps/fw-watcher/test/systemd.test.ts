import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const unitPath = join(fileURLToPath(new URL(".", import.meta.url)), "../systemd/potluck-fw-watcher.service");
const unit = readFileSync(unitPath, "utf8");
const execFileP = promisify(execFile);
const hasSystemdAnalyze = (() => {
  try {
    execFileSync("sh", ["-c", "command -v systemd-analyze"]);
    return true;
  } catch {
    return false;
  }
})();

/** `Key=value` lines of one [Section], in order (repeated keys kept). */
function section(name: string): Array<[string, string]> {
  const body = unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? "";
  return body
    .split("\n")
    .slice(1)
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

describe("systemd unit", () => {
  it("runs --watch as Type=exec, uninstalls on stop and restarts on failure", () => {
    const service = new Map(section("Service"));
    expect(service.get("Type")).toBe("exec");
    expect(service.get("ExecStart")).toMatch(/potluck-fw-watcher --watch$/);
    expect(service.get("ExecStop")).toMatch(/potluck-fw-watcher --uninstall$/);
    expect(service.get("Restart")).toBe("on-failure");
    expect(service.get("CapabilityBoundingSet")).toBe("CAP_NET_ADMIN");
    expect(new Map(section("Install")).get("WantedBy")).toBe("multi-user.target");
  });

  // Not every CI image has systemd; the structural test above runs everywhere.
  it.skipIf(!hasSystemdAnalyze)(
    "passes systemd-analyze verify (with the binary path pointed at one that exists here)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "pfw-unit-"));
      try {
        const copy = join(dir, "potluck-fw-watcher.service");
        writeFileSync(copy, unit.replaceAll("/usr/local/bin/potluck-fw-watcher", "/bin/true"));
        const { stderr } = await execFileP("systemd-analyze", ["verify", copy]);
        expect(stderr.trim()).toBe("");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
