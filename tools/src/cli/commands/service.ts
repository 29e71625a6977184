import { readMeshState } from "@potluck/mesh";
import { platformDataDir } from "@potluck/service";
import { CliError, type Command } from "../command.js";
import { currentHost, type ServiceHost } from "../../service/host.js";
import { describeSteps, installSteps, runSteps, uninstallSteps } from "../../service/install.js";
import { nodeOps } from "../../service/node-ops.js";
import { planServices, type ServicePlan } from "../../service/plan.js";
import { serviceStates } from "../../service/status.js";
import type { SystemOps } from "../../service/steps.js";

const usage = `Usage: potluck service install|uninstall|status [--hub] [--dry-run] [--data-dir DIR] [--winsw PATH] [--json]

Runs this machine's Potluck services under the OS's service manager: restarted on failure,
started at boot, logs where the OS keeps them. Every machine: the sidecar and the mesh agent; with
--hub also the coordinator, the ledger and NATS (nats-server must be installed).

  Linux    systemd units; as root system units in /etc/systemd/system (started at boot), else
           --user units (the mesh agent needs root and is left out). Logs: journalctl -u NAME.
  macOS    as root LaunchDaemons in /Library/LaunchDaemons, else LaunchAgents in
           ~/Library/LaunchAgents (the mesh agent needs root). Logs in /Library/Logs/Potluck or
           ~/Library/Logs/Potluck; launchd's own: log show.
  Windows  Windows services hosted by WinSW (--winsw PATH to WinSW-x64.exe), from an elevated
           shell. Logs in %ProgramData%\\Potluck\\logs and the Event Log.

Settings (POTLUCK_*, DATABASE_URL, secrets) live in one file every service reads: /etc/potluck/
potluck.env (root) or ~/.config/potluck/potluck.env on Linux, .../Application Support/Potluck/
potluck.env on macOS, %ProgramData%\\Potluck\\potluck.env on Windows; readable by its owner only.
install writes it from this shell's POTLUCK_* settings when it does not exist yet.

  --dry-run   print exactly the files and commands, change nothing (secret values redacted)
  --data-dir  the data dir the services use (default: POTLUCK_DATA_DIR, else the OS convention)`;

export const serviceCommand: Command = {
  name: "service",
  summary: "run the services at boot under systemd, launchd or Windows services",
  usage,
  flags: { strings: ["data-dir", "winsw"], booleans: ["hub", "dry-run", "json"] },
  run: (_argv, parsed) => runService(parsed, currentHost(), nodeOps, (text) => process.stdout.write(text)),
};

/** The command with its machine injected: tests run the macOS and Windows paths on Linux. */
export async function runService(
  { flags, positionals }: { flags: Map<string, string>; positionals: string[] },
  host: ServiceHost,
  ops: SystemOps,
  write: (text: string) => void,
): Promise<number> {
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== "install" && action !== "uninstall" && action !== "status"))
    throw new CliError(`expected "potluck service install|uninstall|status"; see potluck service --help`, 2);
  let plan: ServicePlan;
  try {
    const hub = flags.has("hub");
    const dataDir =
      flags.get("data-dir") ??
      (host.env.POTLUCK_DATA_DIR || platformDataDir({ platform: host.platform, env: host.env, home: host.home }));
    // A hub that joined its own mesh gets its NATS on its mesh address (service/plan.ts).
    const meshState = hub ? readMeshState(dataDir) : undefined;
    plan = planServices(host, {
      hub,
      dataDir: flags.get("data-dir"),
      ...(meshState === undefined ? {} : { meshState }),
    });
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  if (action === "status") {
    const states = await serviceStates(plan, ops, host.uid);
    if (flags.has("json")) write(`${JSON.stringify(states)}\n`);
    else for (const s of states) write(`${s.name.padEnd(22)} ${s.detail}\n  logs: ${s.logs}\n`);
    return states.every((s) => s.running) ? 0 : 3;
  }
  const steps =
    action === "install"
      ? installSteps(plan, {
          uid: host.uid,
          user: host.env.USER,
          winsw: flags.get("winsw") ?? host.which("WinSW-x64.exe"),
        })
      : uninstallSteps(plan, { uid: host.uid });
  const skipped = plan.skipped.map((s) => `skipped ${s.name}: ${s.reason}\n`).join("");
  if (flags.has("dry-run")) {
    write(`# potluck service ${action}${plan.hub ? " --hub" : ""}: ${plan.os}, ${plan.scope} scope\n${skipped}`);
    write(describeSteps(steps));
    return 0;
  }
  write(skipped);
  try {
    await runSteps(steps, ops, (line) => write(`${line}\n`));
  } catch (error) {
    throw new CliError(`service ${action}: ${error instanceof Error ? error.message : String(error)}`);
  }
  write(`${action === "install" ? "installed" : "removed"}: ${plan.services.map((s) => s.name).join(", ")}\n`);
  if (action === "install") write(`check them with: potluck service status${plan.hub ? " --hub" : ""}\n`);
  return 0;
}
