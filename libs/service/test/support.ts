import type { Logger } from "../src/logger.js";

export interface LogLine {
  level: "info" | "warn" | "error";
  msg: string;
  obj: object;
}

/** A Logger that keeps what it is told, for assertions. */
export function recordingLog(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (first: object | string, msg?: string) => {
    if (typeof first === "string") lines.push({ level, msg: first, obj: {} });
    else lines.push({ level, msg: msg ?? "", obj: first });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}
