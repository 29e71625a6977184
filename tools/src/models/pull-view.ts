import { formatBytes, formatSeconds } from "./format.js";

/** One NDJSON line of POST /v1/potluck/models/pull. */
export interface PullLine {
  status: string;
  total?: number;
  completed?: number;
  bytesPerS?: number;
  etaS?: number;
  id?: string;
  path?: string;
  sizeBytes?: number;
  sha256?: string | null;
  already?: boolean;
  error?: { code: string; message: string; field?: string };
}

const barWidth = 30;
/** Without a terminal, a progress line at most this often (a log, not an animation). */
const plainEveryMs = 2_000;

/**
 * Shows a pull's progress: on a terminal one bar redrawn in place, with bytes, rate and ETA;
 * otherwise a plain line when the status changes and at most every two seconds while downloading.
 */
export function pullView(out: NodeJS.WriteStream, isTty: boolean) {
  let lastStatus = "";
  let lastPlainAt = 0;
  let barShown = false;
  // Off a terminal, the newest download line not printed yet: printed when the status moves on,
  // so the log always ends its download at the figure it reached.
  let unprinted: PullLine | undefined;
  const print = (line: PullLine) => {
    const downloading = line.total !== undefined && line.completed !== undefined;
    out.write(`${downloading ? `${line.status}: ${numbers(line)}` : line.status}\n`);
    lastStatus = line.status;
    lastPlainAt = Date.now();
    unprinted = undefined;
  };
  const settle = () => {
    if (barShown) out.write("\n");
    barShown = false;
    if (unprinted !== undefined) print(unprinted);
  };
  return {
    line(line: PullLine): void {
      if (line.status === "success" || line.status === "error") return settle();
      const downloading = line.total !== undefined && line.completed !== undefined;
      if (isTty && downloading) {
        out.write(`\r${bar(line)}`);
        barShown = true;
        return;
      }
      if (line.status === lastStatus && (!downloading || Date.now() - lastPlainAt < plainEveryMs)) {
        if (downloading) unprinted = line;
        return;
      }
      settle();
      print(line);
    },
    end: settle,
  };
}

function bar(line: PullLine): string {
  const fraction = line.total! > 0 ? Math.min(1, line.completed! / line.total!) : 0;
  const filled = Math.round(fraction * barWidth);
  return `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}] ${numbers(line)}\x1b[K`;
}

function numbers(line: PullLine): string {
  const percent = line.total! > 0 ? Math.floor((line.completed! / line.total!) * 100) : 0;
  // Before the first second there is no rate worth showing, and no ETA from it.
  const measured = line.bytesPerS !== undefined && line.bytesPerS > 0;
  const rate = measured ? ` ${formatBytes(line.bytesPerS)}/s` : "";
  const eta =
    measured && line.etaS !== undefined && line.completed! < line.total! ? ` ETA ${formatSeconds(line.etaS)}` : "";
  return `${percent}% ${formatBytes(line.completed)} / ${formatBytes(line.total)}${rate}${eta}`;
}
