import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { currentHost } from "../../src/service/host.js";
import { installSteps } from "../../src/service/install.js";
import { planServices } from "../../src/service/plan.js";
import { repoUnitFiles, staleRepoUnits } from "../../src/service/repo-units.js";
import { execLine, parseExecLine, parseUnit } from "../../src/service/units/systemd.js";
import { repoRoot } from "../../src/lib/repo.js";
import { fileSteps, hostOf } from "./fakes.js";
import type { MeshState } from "@potluck/protocol";

const execFileP = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "potluck-units-"));
const runtimeDir = join(dir, "runtime");
mkdirSync(runtimeDir, { mode: 0o700 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** systemd-analyze verify on a temp copy; its stderr is every complaint it has. */
async function verify(name: string, text: string, user = false): Promise<string> {
  const copy = join(dir, `${name}.service`);
  writeFileSync(copy, text);
  // A user manager wants a runtime dir; a temp one stands in for the login session's.
  const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
  const result = await execFileP("systemd-analyze", [...(user ? ["--user"] : []), "verify", copy], { env }).catch(
    (error: { stderr?: string; message: string }) => ({ stderr: `FAILED: ${error.stderr ?? error.message}` }),
  );
  return result.stderr.trim();
}

/** This machine's real node, checkout and nats-server, so every ExecStart names a file that exists. */
function realPlan(root: boolean) {
  const host = { ...currentHost(), root, env: { XDG_CONFIG_HOME: join(dir, "config") } };
  return planServices(host, { hub: true, dataDir: join(dir, "data") });
}

describe("generated systemd units", () => {
  it("every system unit of the hub passes systemd-analyze verify", async () => {
    execFileSync("systemd-analyze", ["--version"]); // not skipped: this machine has systemd-analyze
    const plan = realPlan(true);
    expect(plan.services.map((s) => s.name)).toEqual([
      "potluck-sidecar",
      "potluck-mesh",
      "potluck-coordinator",
      "potluck-ledger",
      "potluck-nats",
      "potluck-fw-watcher",
    ]);
    for (const file of fileSteps(installSteps(plan, { uid: 0 })).filter((f) => f.path.endsWith(".service"))) {
      const name = file.path.split("/").pop() ?? "";
      expect(await verify(name.replace(/\.service$/, ""), file.content), name).toBe("");
    }
  });

  it("the user units (no root: no mesh agent, no fw-watcher) pass verify --user", async () => {
    const plan = realPlan(false);
    expect(plan.scope).toBe("user");
    expect(plan.services.map((s) => s.name)).not.toContain("potluck-mesh");
    expect(plan.skipped.map((s) => s.name)).toEqual(["potluck-mesh", "potluck-fw-watcher"]);
    const units = fileSteps(installSteps(plan, { uid: 1000, user: "ann" })).filter((f) => f.path.endsWith(".service"));
    expect(units.map((u) => u.path)).toContain(join(dir, "config/systemd/user/potluck-sidecar.service"));
    for (const unit of units) {
      expect(unit.content).toContain("WantedBy=default.target");
      expect(await verify(`user-${unit.path.split("/").pop()}`, unit.content, true)).toBe("");
    }
  });

  it("the check can fail: a unit whose program does not exist is refused", async () => {
    const unit = "[Service]\nExecStart=/nonexistent/potluck-sidecar\n[Install]\nWantedBy=multi-user.target\n";
    expect(await verify("broken", unit)).toMatch(/nonexistent/);
  });

  it("restart on failure, start at boot, after the network, settings from the one env file", () => {
    const plan = planServices(hostOf("linux"), { hub: false });
    const text = fileSteps(installSteps(plan, { uid: 0 })).find((f) => f.path.endsWith("potluck-sidecar.service"));
    const unit = parseUnit(text?.content ?? "");
    expect(unit.Unit).toMatchObject({ After: "network-online.target", Wants: "network-online.target" });
    expect(unit.Service).toMatchObject({
      Type: "exec",
      EnvironmentFile: "/etc/potluck/potluck.env",
      ExecStart: "/usr/bin/node /opt/potluck/bin/potluck-sidecar.mjs",
      Restart: "on-failure",
      RestartSec: "5",
    });
    expect(unit.Install).toEqual({ WantedBy: "multi-user.target" });
  });

  it("keeps secrets out of the world-readable units: only the 0600 env file holds them", () => {
    const env = { POTLUCK_NATS_URL: "nats://s3cret-token@127.0.0.1:4222", DATABASE_URL: "postgres://u:pw9@db/p" };
    const plan = planServices(hostOf("linux", { env }), { hub: true });
    const files = fileSteps(installSteps(plan, { uid: 0 }));
    for (const file of files.filter((f) => f.path.endsWith(".service"))) {
      expect(file.mode).toBe(0o644);
      expect(file.content).not.toMatch(/s3cret|pw9/);
    }
    const envFile = files.find((f) => f.path === "/etc/potluck/potluck.env");
    expect(envFile).toMatchObject({ mode: 0o600, keepIfExists: true });
    expect(envFile?.content).toContain("POTLUCK_NATS_URL=nats://s3cret-token@127.0.0.1:4222");
    const natsAuth = files.find((f) => f.path === "/etc/potluck/nats-auth.conf");
    expect(natsAuth).toMatchObject({ mode: 0o600, content: 'authorization { token: "s3cret-token", timeout: 10 }\n' });
    const nats = plan.services.find((s) => s.key === "nats");
    expect(nats?.argv).toEqual([
      "/usr/bin/nats-server",
      ...["-js", "-sd", "/home/ann/.potluck/nats", "-a", "0.0.0.0", "-p", "4222", "-c", "/etc/potluck/nats-auth.conf"],
    ]);
  });

  it("binds the hub's NATS to its mesh address once the hub's own machine joined its mesh, after the mesh agent", () => {
    const joined = {
      coordinatorUrl: "http://192.168.1.10:8320",
      meshIp: "100.64.0.1",
      hubMeshIp: "100.64.0.1",
    } as MeshState;
    const plan = planServices(hostOf("linux"), { hub: true, meshState: joined });
    const nats = plan.services.find((s) => s.key === "nats");
    expect(nats?.argv.slice(nats.argv.indexOf("-a"), nats.argv.indexOf("-a") + 2)).toEqual(["-a", "100.64.0.1"]);
    expect(nats?.after).toEqual(["potluck-mesh.service"]);
    // The hub's own services read NATS from the settings file: there, not on loopback.
    expect(plan.envFileText).toContain("POTLUCK_NATS_URL=nats://100.64.0.1:4222\n");
    const secret = planServices(hostOf("linux", { env: { POTLUCK_NATS_URL: "nats://s3cret@127.0.0.1:4222" } }), {
      hub: true,
      meshState: joined,
    });
    expect(secret.envFileText).toContain("POTLUCK_NATS_URL=nats://s3cret@100.64.0.1:4222\n");
    expect(secret.natsAuth?.text).toContain('token: "s3cret"');
    // A machine that is not the hub's own (another machine's state) changes nothing: every address.
    const other = planServices(hostOf("linux"), { hub: true, meshState: { ...joined, meshIp: "100.64.0.7" } });
    expect(other.services.find((s) => s.key === "nats")?.argv).toContain("0.0.0.0");
    expect(other.envFileText).not.toMatch(/^POTLUCK_NATS_URL=/m);
  });

  it("ExecStart quoting survives spaces, quotes, % and $ both ways", () => {
    const argv = ["/opt/my node/node", 'a"b', "100%", "$HOME", "back\\slash", "plain"];
    const line = execLine(argv);
    expect(line).toBe('"/opt/my node/node" "a\\"b" 100%% $$HOME "back\\\\slash" plain');
    expect(parseExecLine(line)).toEqual(argv);
  });
});

describe("the repository's hand-install units", () => {
  it("are exactly the generator's output (one source of truth)", () => {
    expect(staleRepoUnits()).toEqual([]);
  });

  it("pass systemd-analyze verify", async () => {
    for (const [path, text] of Object.entries(repoUnitFiles())) {
      expect(readFileSync(join(repoRoot, path), "utf8")).toBe(text);
      expect(
        await verify(
          `repo-${path
            .split("/")
            .pop()
            ?.replace(/\.service$/, "")}`,
          text,
        ),
        path,
      ).toBe("");
    }
  });
});
