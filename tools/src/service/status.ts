import { launchdLabel } from "@potluck/protocol";
import { systemctl } from "./install.js";
import type { ServicePlan } from "./plan.js";
import type { SystemOps } from "./steps.js";
import { launchdDomain } from "./units/launchd.js";

export interface ServiceState {
  name: string;
  /** installed: the OS knows it; running: its process is up now. */
  installed: boolean;
  running: boolean;
  /** The OS's own words (systemd's ActiveState/SubState, launchd's state, sc's STATE). */
  detail: string;
  /** Where its log is read. */
  logs: string;
}

/** Each planned service's state, asked of the OS's own service manager. */
export async function serviceStates(plan: ServicePlan, ops: SystemOps, uid: number): Promise<ServiceState[]> {
  const states: ServiceState[] = [];
  for (const spec of plan.services) {
    if (plan.os === "linux") {
      const ctl = systemctl(plan);
      const r = await ops.run([...ctl, "show", "-p", "LoadState,ActiveState,SubState,UnitFileState", spec.name]);
      const props = Object.fromEntries(
        r.stdout
          .split("\n")
          .filter((line) => line.includes("="))
          .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
      );
      const installed = r.code === 0 && props.LoadState === "loaded";
      states.push({
        name: spec.name,
        installed,
        running: props.ActiveState === "active",
        detail: installed
          ? `${props.ActiveState}/${props.SubState}, ${props.UnitFileState ?? "?"}`
          : props.LoadState !== undefined
            ? `not installed (${props.LoadState})`
            : `unknown: ${ctl.join(" ")} failed: ${r.stderr.trim().split("\n")[0] ?? ""}`,
        logs: `journalctl ${plan.scope === "user" ? "--user-unit" : "-u"} ${spec.name}`,
      });
    } else if (plan.os === "darwin") {
      const target = `${launchdDomain(plan, uid)}/${launchdLabel(spec.key)}`;
      const r = await ops.run(["launchctl", "print", target]);
      const state = /^\s*state = (.+)$/m.exec(r.stdout)?.[1]?.trim();
      states.push({
        name: launchdLabel(spec.key),
        installed: r.code === 0,
        running: state === "running",
        detail: r.code === 0 ? `state = ${state ?? "unknown"}` : "not loaded",
        logs: `${plan.logDir}/${spec.name}.log; launchd's own: log show --last 1h --predicate 'eventMessage CONTAINS "${launchdLabel(spec.key)}"'`,
      });
    } else {
      const r = await ops.run(["sc.exe", "query", spec.name]);
      const state = /STATE\s*:\s*\d+\s+(\w+)/.exec(r.stdout)?.[1];
      states.push({
        name: spec.name,
        installed: r.code === 0,
        running: state === "RUNNING",
        detail: r.code === 0 ? (state ?? "unknown") : "not installed",
        logs: `${plan.logDir}\\${spec.name}.out.log and .err.log; Event Log: Get-WinEvent -LogName Application,System | Where-Object Message -match '${spec.name}'`,
      });
    }
  }
  return states;
}
