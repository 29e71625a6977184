import { parse as parsePlist } from "plist";
import { describe, expect, it } from "vitest";
import { runService } from "../../src/cli/commands/service.js";
import { installSteps, uninstallSteps } from "../../src/service/install.js";
import { planServices } from "../../src/service/plan.js";
import { serviceStates } from "../../src/service/status.js";
import { fileSteps, hostOf, recordingOps } from "./fakes.js";

const flags = (...names: string[]) => new Map(names.map((n) => [n, ""]));

describe("launchd (macOS, built on Linux under an injected platform)", () => {
  it("root: every service a LaunchDaemon whose plist parses with the keys launchd needs", () => {
    const plan = planServices(hostOf("darwin", { env: { POTLUCK_NATS_URL: "nats://tok3n@127.0.0.1:4222" } }), {
      hub: true,
    });
    expect(plan.dataDir).toBe("/Users/ann/Library/Application Support/Potluck");
    expect(plan.skipped).toEqual([
      { name: "potluck-fw-watcher", reason: "not applicable on this OS (darwin): it edits Linux nftables" },
    ]);
    const plists = fileSteps(installSteps(plan, { uid: 0 })).filter((f) => f.path.endsWith(".plist"));
    expect(plists.map((p) => p.path)).toEqual([
      "/Library/LaunchDaemons/org.potluck.sidecar.plist",
      "/Library/LaunchDaemons/org.potluck.mesh.plist",
      "/Library/LaunchDaemons/org.potluck.coordinator.plist",
      "/Library/LaunchDaemons/org.potluck.ledger.plist",
      "/Library/LaunchDaemons/org.potluck.nats.plist",
    ]);
    for (const file of plists) {
      expect(file.content).not.toContain("tok3n");
      const parsed = parsePlist(file.content) as Record<string, unknown>;
      expect(Object.keys(parsed)).toEqual(
        expect.arrayContaining(["Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "StandardOutPath"]),
      );
      expect(parsed.RunAtLoad).toBe(true);
      expect(parsed.KeepAlive).toEqual({ SuccessfulExit: false });
      expect(parsed.ThrottleInterval).toBe(5);
      expect(String(parsed.StandardErrorPath)).toMatch(/^\/Library\/Logs\/Potluck\/potluck-[a-z]+\.log$/);
    }
    const sidecar = parsePlist(plists[0]?.content ?? "") as Record<string, unknown>;
    expect(sidecar.Label).toBe("org.potluck.sidecar");
    expect(sidecar.ProgramArguments).toEqual([
      "/opt/homebrew/bin/node",
      "--env-file=/Library/Application Support/Potluck/potluck.env",
      "/Users/ann/potluck/bin/potluck-sidecar.mjs",
    ]);
    const nats = parsePlist(plists[4]?.content ?? "") as { ProgramArguments: string[] };
    expect(nats.ProgramArguments[0]).toBe("/opt/homebrew/bin/nats-server");
    expect(nats.ProgramArguments).not.toContain("--env-file=/Library/Application Support/Potluck/potluck.env");
  });

  it("not root: LaunchAgents in ~/Library, the mesh agent left out with the reason", async () => {
    const host = hostOf("darwin", { root: false });
    const ops = recordingOps();
    const out: string[] = [];
    expect(await runService({ flags: flags(), positionals: ["install"] }, host, ops, (t) => out.push(t))).toBe(0);
    expect(out.join("")).toContain("skipped potluck-mesh: it drives WireGuard, so it needs root");
    expect(ops.log).toEqual([
      "mkdir /Users/ann/Library/Application Support/Potluck 700",
      "write /Users/ann/Library/Application Support/Potluck/potluck.env 600",
      "mkdir /Users/ann/Library/Logs/Potluck 755",
      "mkdir /Users/ann/Library/LaunchAgents 755",
      "write /Users/ann/Library/LaunchAgents/org.potluck.sidecar.plist 644",
      "run launchctl bootout gui/501/org.potluck.sidecar",
      "run launchctl enable gui/501/org.potluck.sidecar",
      "run launchctl bootstrap gui/501 /Users/ann/Library/LaunchAgents/org.potluck.sidecar.plist",
    ]);
  });

  it("status reads launchctl print; uninstall boots out and removes the plist", async () => {
    const plan = planServices(hostOf("darwin"), { hub: false });
    const ops = recordingOps({
      "launchctl print system/org.potluck.sidecar": {
        code: 0,
        stdout: "system/org.potluck.sidecar = {\n\tstate = running\n",
        stderr: "",
      },
      "launchctl print system/org.potluck.mesh": { code: 113, stdout: "", stderr: "Could not find service" },
    });
    const states = await serviceStates(plan, ops, 0);
    expect(states.map((s) => [s.name, s.installed, s.running, s.detail])).toEqual([
      ["org.potluck.sidecar", true, true, "state = running"],
      ["org.potluck.mesh", false, false, "not loaded"],
    ]);
    expect(states[0]?.logs).toContain("log show");
    expect(
      uninstallSteps(plan, { uid: 0 }).map((s) =>
        s.kind === "run" ? s.argv.join(" ") : `${s.kind} ${"path" in s ? s.path : ""}`,
      ),
    ).toEqual([
      "launchctl bootout system/org.potluck.sidecar",
      "remove /Library/LaunchDaemons/org.potluck.sidecar.plist",
      "launchctl bootout system/org.potluck.mesh",
      "remove /Library/LaunchDaemons/org.potluck.mesh.plist",
    ]);
  });
});

describe("Windows services through WinSW (built on Linux under an injected platform)", () => {
  it("--dry-run prints exactly these files and commands (golden)", async () => {
    const out: string[] = [];
    const host = hostOf("win32", {
      env: {
        LOCALAPPDATA: "C:\\Users\\ann\\AppData\\Local",
        ProgramData: "C:\\ProgramData",
        POTLUCK_NATS_URL: "nats://tok3n@hub.lan:4222",
      },
    });
    const ops = recordingOps();
    const code = await runService(
      {
        flags: new Map([
          ["dry-run", ""],
          ["winsw", "C:\\Tools\\WinSW-x64.exe"],
        ]),
        positionals: ["install"],
      },
      host,
      ops,
      (t) => out.push(t),
    );
    expect(code).toBe(0);
    expect(ops.log).toEqual([]); // a dry run touches nothing
    expect(out.join("")).toBe(GOLDEN_WINDOWS);
  });

  it("status reads sc.exe query; a missing service is not installed", async () => {
    const plan = planServices(hostOf("win32"), { hub: false });
    const ops = recordingOps({
      "sc.exe query potluck-sidecar": {
        code: 0,
        stdout:
          "SERVICE_NAME: potluck-sidecar\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n        STATE              : 4  RUNNING\r\n",
        stderr: "",
      },
      "sc.exe query potluck-mesh": {
        code: 1060,
        stdout: "[SC] EnumQueryServicesStatus:OpenService FAILED 1060",
        stderr: "",
      },
    });
    const states = await serviceStates(plan, ops, 0);
    expect(states.map((s) => [s.name, s.running, s.detail])).toEqual([
      ["potluck-sidecar", true, "RUNNING"],
      ["potluck-mesh", false, "not installed"],
    ]);
    expect(states[0]?.logs).toContain("C:\\ProgramData\\Potluck\\logs\\potluck-sidecar.out.log");
  });

  it("install stops with the download hint when WinSW is not there", async () => {
    const ops = { ...recordingOps(), exists: () => false };
    await expect(
      runService({ flags: flags(), positionals: ["install"] }, hostOf("win32"), ops, () => {}),
    ).rejects.toThrow(
      /WinSW-x64.exe not found: download WinSW-x64.exe from https:\/\/github.com\/winsw\/winsw\/releases/,
    );
  });
});

describe("linux status and bad input", () => {
  it("status reads systemctl show and exits 3 when a service is down", async () => {
    const ops = recordingOps({
      "systemctl show -p LoadState,ActiveState,SubState,UnitFileState potluck-sidecar": {
        code: 0,
        stdout: "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n",
        stderr: "",
      },
      "systemctl show -p LoadState,ActiveState,SubState,UnitFileState potluck-mesh": {
        code: 0,
        stdout: "LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n",
        stderr: "",
      },
    });
    const out: string[] = [];
    const code = await runService({ flags: flags(), positionals: ["status"] }, hostOf("linux"), ops, (t) =>
      out.push(t),
    );
    expect(code).toBe(3);
    expect(out.join("")).toContain(
      "potluck-sidecar        active/running, enabled\n  logs: journalctl -u potluck-sidecar",
    );
    expect(out.join("")).toContain("potluck-mesh           not installed (not-found)");
  });

  it("an unknown action is a usage error naming the choices", async () => {
    await expect(
      runService({ flags: flags(), positionals: ["start"] }, hostOf("linux"), recordingOps(), () => {}),
    ).rejects.toThrow('expected "potluck service install|uninstall|status"');
  });

  it("another OS is refused by name", async () => {
    await expect(
      runService({ flags: flags(), positionals: ["status"] }, hostOf("freebsd"), recordingOps(), () => {}),
    ).rejects.toThrow("this is freebsd");
  });
});

const GOLDEN_WINDOWS = String.raw`# potluck service install: win32, system scope
skipped potluck-fw-watcher: not applicable on this OS (win32): it edits Linux nftables
mkdir C:\ProgramData\Potluck  (mode 700)
file C:\ProgramData\Potluck\potluck.env  (mode 600, kept if it exists)
  | # Potluck's settings: every Potluck service reads this file (written by potluck service install).
  | # Readable by its owner only: it may hold secrets (POTLUCK_NATS_URL with the NATS token, DATABASE_URL).
  | # After editing, restart the services (potluck service status lists them).
  | POTLUCK_DATA_DIR='C:\Users\ann\AppData\Local\Potluck'
  | POTLUCK_NATS_URL=nats://<redacted>@hub.lan:4222
run icacls C:\ProgramData\Potluck\potluck.env /inheritance:r /grant:r '*S-1-5-18:F' '*S-1-5-32-544:F'
mkdir C:\ProgramData\Potluck\logs  (mode 755)
mkdir C:\ProgramData\Potluck\services  (mode 755)
copy C:\Tools\WinSW-x64.exe C:\ProgramData\Potluck\services\potluck-sidecar.exe
file C:\ProgramData\Potluck\services\potluck-sidecar.xml  (mode 644)
  | <service>
  |   <id>potluck-sidecar</id>
  |   <name>potluck-sidecar</name>
  |   <description>Potluck sidecar (this machine's models, memory and peer API)</description>
  |   <executable>C:\Program Files\nodejs\node.exe</executable>
  |   <arguments>--env-file=C:\ProgramData\Potluck\potluck.env C:\Users\ann\potluck\bin\potluck-sidecar.mjs</arguments>
  |   <startmode>Automatic</startmode>
  |   <delayedAutoStart>true</delayedAutoStart>
  |   <onfailure action="restart" delay="5 sec"/>
  |   <resetfailure>1 hour</resetfailure>
  |   <stoptimeout>15 sec</stoptimeout>
  |   <logpath>C:\ProgramData\Potluck\logs</logpath>
  |   <log mode="roll-by-size">
  |     <sizeThreshold>10240</sizeThreshold>
  |     <keepFiles>8</keepFiles>
  |   </log>
  | </service>
run C:\ProgramData\Potluck\services\potluck-sidecar.exe install
run C:\ProgramData\Potluck\services\potluck-sidecar.exe start
copy C:\Tools\WinSW-x64.exe C:\ProgramData\Potluck\services\potluck-mesh.exe
file C:\ProgramData\Potluck\services\potluck-mesh.xml  (mode 644)
  | <service>
  |   <id>potluck-mesh</id>
  |   <name>potluck-mesh</name>
  |   <description>Potluck mesh agent (the WireGuard mesh, following the coordinator roster)</description>
  |   <executable>C:\Program Files\nodejs\node.exe</executable>
  |   <arguments>--env-file=C:\ProgramData\Potluck\potluck.env C:\Users\ann\potluck\bin\potluck-mesh.mjs</arguments>
  |   <startmode>Automatic</startmode>
  |   <delayedAutoStart>true</delayedAutoStart>
  |   <onfailure action="restart" delay="5 sec"/>
  |   <resetfailure>1 hour</resetfailure>
  |   <stoptimeout>15 sec</stoptimeout>
  |   <logpath>C:\ProgramData\Potluck\logs</logpath>
  |   <log mode="roll-by-size">
  |     <sizeThreshold>10240</sizeThreshold>
  |     <keepFiles>8</keepFiles>
  |   </log>
  | </service>
run C:\ProgramData\Potluck\services\potluck-mesh.exe install
run C:\ProgramData\Potluck\services\potluck-mesh.exe start
`;
