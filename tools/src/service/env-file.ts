/**
 * The one settings file every service reads (systemd's EnvironmentFile=, node's --env-file= under
 * launchd and Windows). Values are single-quoted when they need quoting: both parsers take a
 * single-quoted value literally, where double quotes would turn a Windows path's "\n" into a newline.
 */

/** Settings copied from the installing shell: Potluck's own and the database URL the hub needs. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): [string, string][] {
  return Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "")
    .filter(([key]) => key.startsWith("POTLUCK_") || key === "DATABASE_URL")
    .filter(([key]) => key !== "POTLUCK_DATA_DIR")
    .sort(([a], [b]) => a.localeCompare(b));
}

export function renderEnvFile(dataDir: string, settings: readonly [string, string][]): string {
  const lines = [
    "# Potluck's settings: every Potluck service reads this file (written by potluck service install).",
    "# Readable by its owner only: it may hold secrets (POTLUCK_NATS_URL with the NATS token, DATABASE_URL).",
    "# After editing, restart the services (potluck service status lists them).",
    envLine("POTLUCK_DATA_DIR", dataDir),
    ...settings.map(([key, value]) => envLine(key, value)),
  ];
  return `${lines.join("\n")}\n`;
}

function envLine(key: string, value: string): string {
  if (/[\n\r']/.test(value))
    throw new Error(`${key}: a value for the settings file cannot hold a newline or a single quote`);
  return /^[A-Za-z0-9_@%+=:,./-]*$/.test(value) ? `${key}=${value}` : `${key}='${value}'`;
}

/** Parses what renderEnvFile writes (and the usual KEY=VALUE lines); used by the unit supervisor. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`settings file: expected KEY=VALUE, got ${JSON.stringify(line)}`);
    const value = line.slice(eq + 1).trim();
    const quoted = /^'(.*)'$/.exec(value) ?? /^"(.*)"$/.exec(value);
    out[line.slice(0, eq).trim()] = quoted?.[1] ?? value;
  }
  return out;
}

/** Hides secrets for --dry-run output: credentials in URLs and values of secret-named keys. */
export function redactEnvFile(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (match === null) return line;
      const [, key = "", value = ""] = match;
      if (/SECRET|PASSWORD|TOKEN|_KEY$/.test(key)) return `${key}=<redacted>`;
      return `${key}=${value.replace(/(\/\/)[^@/\s']+@/, "$1<redacted>@")}`;
    })
    .join("\n");
}
