import type { ServiceSpec, SystemdLine } from "../plan.js";

/** Seconds systemd waits before restarting a failed service (Restart=on-failure). */
export const restartDelayS = 5;

export interface SystemdUnitOptions {
  scope: "system" | "user";
  envFile: string;
  /** Comment lines above [Unit]: what generated the file and how to install it by hand. */
  header?: readonly string[];
}

/**
 * A systemd unit for one service: restarted on failure after RestartSec, started at boot
 * (WantedBy), after the network is up, its output in the journal (journalctl -u NAME), its settings
 * from the one env file so no secret sits in this world-readable file.
 */
export function systemdUnit(spec: ServiceSpec, options: SystemdUnitOptions): string {
  const system = options.scope === "system";
  // A user manager has no network-online.target: ordering on it would be a no-op at best.
  const after = [...(system ? ["network-online.target"] : []), ...(spec.after ?? [])];
  const unit: SystemdLine[] = [["Description", spec.description]];
  if (after.length > 0) unit.push(["After", after.join(" ")]);
  if (system) unit.push(["Wants", "network-online.target"]);
  const service: SystemdLine[] = [
    { comment: "exec: systemd reports a failed start when the program cannot be executed at all." },
    ["Type", "exec"],
    { comment: "Settings and secrets come from this file (mode 0600), never from this world-readable unit." },
    ["EnvironmentFile", options.envFile],
    ["ExecStart", execLine(spec.argv)],
  ];
  if (spec.stopArgv !== undefined) service.push(["ExecStop", execLine(spec.stopArgv)]);
  service.push(["Restart", "on-failure"], ["RestartSec", String(restartDelayS)], ["SyslogIdentifier", spec.name]);
  service.push(...(spec.systemdExtra ?? []));
  const install: SystemdLine[] = [["WantedBy", system ? "multi-user.target" : "default.target"]];
  const text = [
    ...(options.header ?? []).map((line) => `# ${line}`),
    section("Unit", unit),
    "",
    section("Service", service),
    "",
    section("Install", install),
  ];
  return `${text.join("\n")}\n`;
}

function section(name: string, lines: readonly SystemdLine[]): string {
  return [
    `[${name}]`,
    ...lines.map((line) => ("comment" in line ? `# ${line.comment}` : `${line[0]}=${line[1]}`)),
  ].join("\n");
}

/**
 * An argv as one ExecStart= line: systemd splits on spaces and honours double quotes with C
 * escapes; "%" starts a specifier and "$" a variable, so both are doubled to stay literal.
 */
export function execLine(argv: readonly string[]): string {
  return argv
    .map((arg) => {
      const literal = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
      return /^[A-Za-z0-9_@%+=:,./$-]+$/.test(literal)
        ? literal
        : `"${literal.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
    })
    .join(" ");
}

/** The inverse of execLine, for running a unit's ExecStart= under the test supervisor. */
export function parseExecLine(line: string): string[] {
  const args: string[] = [];
  let current = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? "";
    if (quoted) {
      if (c === "\\") current += line[++i] ?? "";
      else if (c === '"') quoted = false;
      else current += c;
    } else if (c === '"') {
      quoted = inWord = true;
    } else if (c === " ") {
      if (inWord) args.push(current);
      current = "";
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quoted) throw new Error(`ExecStart: unterminated quote in ${line}`);
  if (inWord) args.push(current);
  return args.map((arg) => arg.replaceAll("%%", "%").replaceAll("$$", "$"));
}

/** The directives of a unit file, section by section (the last value of a repeated key wins). */
export function parseUnit(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current: Record<string, string> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      current = sections[header[1] ?? ""] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (current === undefined || eq <= 0) throw new Error(`unit file: unexpected line ${JSON.stringify(line)}`);
    current[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return sections;
}
