import { posix } from "node:path";
import { launchdLabel } from "@potluck/protocol";
import type { ServicePlan, ServiceSpec } from "../plan.js";
import { restartDelayS } from "./systemd.js";

type PlistValue = string | number | boolean | readonly PlistValue[] | { readonly [key: string]: PlistValue };

/**
 * A launchd property list for one service (launchd.plist(5)): started when loaded and at boot or
 * login (RunAtLoad), started again when it exits unsuccessfully (KeepAlive SuccessfulExit=false)
 * no sooner than ThrottleInterval, its output in the Potluck log folder. launchd reads no
 * environment file, so node gets the one settings file through --env-file; no secret sits here.
 */
export function launchdPlist(spec: ServiceSpec, plan: ServicePlan): string {
  const label = launchdLabel(spec.key);
  const argv = spec.node ? [spec.argv[0] ?? "node", `--env-file=${plan.envFile}`, ...spec.argv.slice(1)] : spec.argv;
  const dict: Record<string, PlistValue> = {
    Label: label,
    ProgramArguments: argv,
    RunAtLoad: true,
    KeepAlive: { SuccessfulExit: false },
    ThrottleInterval: restartDelayS,
    ProcessType: "Background",
    StandardOutPath: posix.join(plan.logDir, `${spec.name}.log`),
    StandardErrorPath: posix.join(plan.logDir, `${spec.name}.log`),
  };
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    ...value(dict, ""),
    "</plist>",
    "",
  ].join("\n");
}

/** Where a service's plist goes: /Library/LaunchDaemons (root) or ~/Library/LaunchAgents. */
export function plistPath(spec: ServiceSpec, plan: ServicePlan): string {
  return posix.join(plan.unitDir, `${launchdLabel(spec.key)}.plist`);
}

/** launchctl's domain target: the system domain for daemons, the user's GUI session for agents. */
export function launchdDomain(plan: ServicePlan, uid: number): string {
  return plan.scope === "system" ? "system" : `gui/${uid}`;
}

function value(v: PlistValue, indent: string): string[] {
  if (typeof v === "string") return [`${indent}<string>${escapeXml(v)}</string>`];
  if (typeof v === "number") return [`${indent}<integer>${Math.trunc(v)}</integer>`];
  if (typeof v === "boolean") return [`${indent}<${v ? "true" : "false"}/>`];
  if (isArray(v)) return [`${indent}<array>`, ...v.flatMap((item) => value(item, `${indent}  `)), `${indent}</array>`];
  return [
    `${indent}<dict>`,
    ...Object.entries(v).flatMap(([key, item]) => [
      `${indent}  <key>${escapeXml(key)}</key>`,
      ...value(item, `${indent}  `),
    ]),
    `${indent}</dict>`,
  ];
}

function isArray(v: PlistValue): v is readonly PlistValue[] {
  return Array.isArray(v);
}

export function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}
