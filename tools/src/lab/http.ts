import { join } from "node:path";
import { repoRoot } from "../lib/repo.js";
import { pollUntil } from "./run.js";
import type { LabHost, LabProcess } from "./types.js";

/** The plain-node HTTP server/client the lab's own tests (and anyone's) run inside hosts. */
export const labHttpScript = join(repoRoot, "tools/scripts/lab-http.mjs");
/** A node process starting on a loaded machine can take seconds. */
const serveReadyTimeoutMs = 60_000;

export interface HttpResult {
  ok: boolean;
  status?: number;
  bytes?: number;
  error?: string;
  /** e.g. "ECONNREFUSED", "TIMEOUT". */
  code?: string;
}

/** Starts an HTTP server on `host` (all addresses, `port`) and waits until it listens. */
export async function serveHttp(host: LabHost, port: number, name = "http"): Promise<LabProcess> {
  const proc = host.spawn(name, [process.execPath, labHttpScript, "serve", String(port)]);
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const ready = await pollUntil(() => exited || proc.output().includes("listening"), {
    timeoutMs: serveReadyTimeoutMs,
    intervalMs: 50,
  });
  if (!ready || exited) {
    await proc.stop();
    throw new Error(`starting an HTTP server on ${host.name}:${port}: ${proc.output().trim() || "no output"}`);
  }
  return proc;
}

/** One HTTP request made from inside `host`; never throws for network failures, reports them. */
export async function httpFrom(
  host: LabHost,
  url: string,
  opts: { method?: string; bodyBytes?: number; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const argv = [
    process.execPath,
    labHttpScript,
    "request",
    url,
    "--method",
    opts.method ?? (opts.bodyBytes ? "POST" : "GET"),
    "--body-bytes",
    String(opts.bodyBytes ?? 0),
    "--timeout-ms",
    String(timeoutMs),
  ];
  // The process limit sits well above the request deadline: node may start slowly under load.
  const result = await host.exec(argv, { timeoutMs: timeoutMs + 60_000 });
  const line = result.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as HttpResult;
  } catch {
    return {
      ok: false,
      error: `lab-http exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 500)}`,
      code: "CLIENT",
    };
  }
}
