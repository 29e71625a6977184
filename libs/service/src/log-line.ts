import { pino, type Logger as PinoLogger } from "pino";

/**
 * `potluck up` relays every service's log to one terminal. The services log pino's JSON (one
 * object per line, for journald and log shippers); a person at that terminal reads
 * `12:04:05 WARN msg key=value` far better. A line that is not pino's JSON passes unchanged.
 */
export function humanLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, pid: _pid, hostname: _host, name: _name, ...rest } = entry;
  if (typeof level !== "number" || typeof time !== "number" || typeof msg !== "string") return line;
  const clock = new Date(time).toISOString().slice(11, 19);
  const label = levelLabels.find(([at]) => level >= at)?.[1] ?? "";
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${fieldText(value)}`);
  return [clock, label, msg, ...fields].filter((part) => part !== "").join(" ");
}

/** pino's numeric levels, highest first; info and below need no label. */
const levelLabels: ReadonlyArray<readonly [number, string]> = [
  [60, "FATAL"],
  [50, "ERROR"],
  [40, "WARN"],
];

/** Bound on one field as shown; the JSON form (POTLUCK_LOG_FORMAT=json) keeps it whole. */
const fieldCharsMax = 300;

function fieldText(value: unknown): string {
  // An error object from pino's serializer: its message says it; the stack stays in the JSON log.
  if (typeof value === "object" && value !== null && "message" in value && "stack" in value)
    return JSON.stringify((value as { message: unknown }).message);
  const text = typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return text.length > fieldCharsMax ? `${text.slice(0, fieldCharsMax)}…` : text;
}

/**
 * A service's logger: pino's JSON where a machine reads the log (journald, launchd, a pipe to
 * `potluck up`), readable lines where a person does (a terminal), and POTLUCK_LOG_FORMAT
 * (`json` | `text`) to say which.
 */
export function serviceLogger(
  name: string,
  { format = process.env.POTLUCK_LOG_FORMAT, tty = process.stdout.isTTY }: { format?: string; tty?: boolean } = {},
): PinoLogger {
  const text = format === "text" || (format !== "json" && tty === true);
  if (!text) return pino({ name });
  return pino({ name }, { write: (line: string) => process.stdout.write(`${humanLogLine(line.trimEnd())}\n`) });
}
