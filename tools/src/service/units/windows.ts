import { win32 } from "node:path";
import type { ServicePlan, ServiceSpec } from "../plan.js";
import { escapeXml } from "./launchd.js";
import { restartDelayS } from "./systemd.js";

/**
 * Windows: each service is a real Windows service hosted by WinSW (github.com/winsw/winsw), the
 * documented wrapper for programs that are not service-aware. node.exe cannot answer the Service
 * Control Manager itself, so `sc.exe create` on node would be killed as unresponsive, and a
 * scheduled task restarts only a task that fails to launch, not a process that dies later. WinSW
 * registers the service (start at boot: Automatic), restarts it on failure, writes start/stop/
 * failure events to the Event Log and the program's output to rolling files in the log folder,
 * and stops it with Ctrl+C, which node turns into SIGINT (drainOnSignal drains on it).
 *
 * WinSW's convention: a copy of WinSW.exe renamed to the service id, next to an XML file of the
 * same name; `NAME.exe install|start|stop|uninstall`.
 */
export function winswXml(spec: ServiceSpec, plan: ServicePlan): string {
  const [program = "node.exe", ...rest] = spec.argv;
  const args = spec.node ? [`--env-file=${plan.envFile}`, ...rest] : rest;
  return [
    "<service>",
    `  <id>${escapeXml(spec.name)}</id>`,
    `  <name>${escapeXml(spec.name)}</name>`,
    `  <description>${escapeXml(spec.description)}</description>`,
    `  <executable>${escapeXml(program)}</executable>`,
    `  <arguments>${escapeXml(args.map(windowsQuote).join(" "))}</arguments>`,
    "  <startmode>Automatic</startmode>",
    "  <delayedAutoStart>true</delayedAutoStart>",
    `  <onfailure action="restart" delay="${restartDelayS} sec"/>`,
    "  <resetfailure>1 hour</resetfailure>",
    "  <stoptimeout>15 sec</stoptimeout>",
    `  <logpath>${escapeXml(plan.logDir)}</logpath>`,
    '  <log mode="roll-by-size">',
    "    <sizeThreshold>10240</sizeThreshold>",
    "    <keepFiles>8</keepFiles>",
    "  </log>",
    "</service>",
    "",
  ].join("\n");
}

/** The renamed WinSW copy for a service, and its XML beside it. */
export function winswPaths(spec: ServiceSpec, plan: ServicePlan): { exe: string; xml: string } {
  return { exe: win32.join(plan.unitDir, `${spec.name}.exe`), xml: win32.join(plan.unitDir, `${spec.name}.xml`) };
}

/** One argument as CommandLineToArgvW reads it back: quoted when it has spaces, inner quotes escaped. */
export function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}
