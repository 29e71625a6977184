import { launchdLabel } from "@potluck/protocol";
import { redactEnvFile } from "./env-file.js";
import type { ServicePlan } from "./plan.js";
import type { Step, SystemOps } from "./steps.js";
import { launchdDomain, launchdPlist, plistPath } from "./units/launchd.js";
import { systemdUnit } from "./units/systemd.js";
import { winswPaths, winswXml } from "./units/windows.js";

const header = ["Written by `potluck service install` (tools/src/service); settings live in the env file it names."];

/** Files to write and commands to run to install (or update) the plan's services. */
export function installSteps(plan: ServicePlan, o: { uid: number; user?: string; winsw?: string }): Step[] {
  const steps: Step[] = [
    { kind: "mkdir", path: plan.configDir, mode: 0o700 },
    // The user's edits (and secrets) survive a reinstall: an existing settings file is kept.
    { kind: "file", path: plan.envFile, content: plan.envFileText, mode: 0o600, keepIfExists: true, secret: "env" },
  ];
  if (plan.natsAuth !== undefined)
    steps.push({ kind: "file", path: plan.natsAuth.path, content: plan.natsAuth.text, mode: 0o600, secret: "whole" });
  const names = plan.services.map((s) => s.name);
  if (plan.os === "linux") {
    const ctl = systemctl(plan);
    steps.push({ kind: "mkdir", path: plan.unitDir, mode: 0o755 });
    for (const spec of plan.services)
      steps.push({
        kind: "file",
        path: `${plan.unitDir}/${spec.name}.service`,
        content: systemdUnit(spec, { scope: plan.scope, envFile: plan.envFile, header }),
        mode: 0o644,
      });
    steps.push({ kind: "run", argv: [...ctl, "daemon-reload"] });
    steps.push({ kind: "run", argv: [...ctl, "enable", "--now", ...names] });
    // A user's units start at boot only when the user lingers; otherwise at login.
    if (plan.scope === "user" && o.user !== undefined)
      steps.push({ kind: "run", argv: ["loginctl", "enable-linger", o.user], mayFail: true });
  } else if (plan.os === "darwin") {
    const domain = launchdDomain(plan, o.uid);
    steps.push({ kind: "mkdir", path: plan.logDir, mode: 0o755 }, { kind: "mkdir", path: plan.unitDir, mode: 0o755 });
    for (const spec of plan.services) {
      const path = plistPath(spec, plan);
      steps.push(
        { kind: "file", path, content: launchdPlist(spec, plan), mode: 0o644 },
        // bootstrap refuses a label already loaded: unload the old one first (absent is fine).
        { kind: "run", argv: ["launchctl", "bootout", `${domain}/${launchdLabel(spec.key)}`], mayFail: true },
        { kind: "run", argv: ["launchctl", "enable", `${domain}/${launchdLabel(spec.key)}`] },
        { kind: "run", argv: ["launchctl", "bootstrap", domain, path] },
      );
    }
  } else {
    // SYSTEM and Administrators only (well-known SIDs, so any Windows language): the file holds secrets.
    steps.push({
      kind: "run",
      argv: ["icacls", plan.envFile, "/inheritance:r", "/grant:r", "*S-1-5-18:F", "*S-1-5-32-544:F"],
    });
    steps.push({ kind: "mkdir", path: plan.logDir, mode: 0o755 }, { kind: "mkdir", path: plan.unitDir, mode: 0o755 });
    for (const spec of plan.services) {
      const { exe, xml } = winswPaths(spec, plan);
      steps.push(
        { kind: "copy", from: o.winsw ?? "WinSW-x64.exe", to: exe },
        { kind: "file", path: xml, content: winswXml(spec, plan), mode: 0o644 },
        { kind: "run", argv: [exe, "install"] },
        { kind: "run", argv: [exe, "start"] },
      );
    }
  }
  return steps;
}

/** Stops and removes the plan's services; the settings file and the data dir stay. */
export function uninstallSteps(plan: ServicePlan, o: { uid: number }): Step[] {
  const names = plan.services.map((s) => s.name);
  if (plan.os === "linux") {
    const ctl = systemctl(plan);
    return [
      { kind: "run", argv: [...ctl, "disable", "--now", ...names], mayFail: true },
      ...plan.services.map((s): Step => ({ kind: "remove", path: `${plan.unitDir}/${s.name}.service` })),
      { kind: "run", argv: [...ctl, "daemon-reload"] },
    ];
  }
  if (plan.os === "darwin") {
    const domain = launchdDomain(plan, o.uid);
    return plan.services.flatMap((spec): Step[] => [
      { kind: "run", argv: ["launchctl", "bootout", `${domain}/${launchdLabel(spec.key)}`], mayFail: true },
      { kind: "remove", path: plistPath(spec, plan) },
    ]);
  }
  return plan.services.flatMap((spec): Step[] => {
    const { exe, xml } = winswPaths(spec, plan);
    return [
      { kind: "run", argv: [exe, "stop"], mayFail: true },
      { kind: "run", argv: [exe, "uninstall"], mayFail: true },
      { kind: "remove", path: xml },
      { kind: "remove", path: exe },
    ];
  });
}

export function systemctl(plan: ServicePlan): string[] {
  return plan.scope === "user" ? ["systemctl", "--user"] : ["systemctl"];
}

/** Runs the steps in order; stops at the first failure that is not allowed to fail. */
export async function runSteps(steps: readonly Step[], ops: SystemOps, say: (line: string) => void): Promise<void> {
  for (const step of steps) {
    if (step.kind === "mkdir") ops.mkdir(step.path, step.mode);
    else if (step.kind === "copy") {
      if (!ops.exists(step.from))
        throw new Error(
          `${step.from} not found: download WinSW-x64.exe from https://github.com/winsw/winsw/releases and pass --winsw PATH`,
        );
      ops.copyFile(step.from, step.to);
    } else if (step.kind === "remove") {
      if (ops.exists(step.path)) ops.remove(step.path);
    } else if (step.kind === "file") {
      if (step.keepIfExists === true && ops.exists(step.path)) {
        say(`kept ${step.path} (it exists; edit it to change settings)`);
        continue;
      }
      ops.writeFile(step.path, step.content, step.mode);
      say(`wrote ${step.path}`);
    } else {
      const result = await ops.run(step.argv);
      if (result.code !== 0 && step.mayFail !== true)
        throw new Error(`${step.argv.join(" ")} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`);
    }
  }
}

/** Exactly the files and commands, for --dry-run (secret values redacted). */
export function describeSteps(steps: readonly Step[]): string {
  const out: string[] = [];
  for (const step of steps) {
    if (step.kind === "mkdir") out.push(`mkdir ${quote(step.path)}  (mode ${step.mode.toString(8)})`);
    else if (step.kind === "copy") out.push(`copy ${quote(step.from)} ${quote(step.to)}`);
    else if (step.kind === "remove") out.push(`remove ${quote(step.path)}`);
    else if (step.kind === "run")
      out.push(`run ${step.argv.map(quote).join(" ")}${step.mayFail ? "  (may fail)" : ""}`);
    else {
      const note = step.keepIfExists ? ", kept if it exists" : "";
      out.push(`file ${quote(step.path)}  (mode ${step.mode.toString(8)}${note})`);
      const content =
        step.secret === "whole"
          ? `<${step.content.length} bytes of credentials, redacted>`
          : step.secret === "env"
            ? redactEnvFile(step.content)
            : step.content;
      out.push(
        ...content
          .replace(/\n$/, "")
          .split("\n")
          .map((line) => `  | ${line}`),
      );
    }
  }
  return `${out.join("\n")}\n`;
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./\\-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
