import { spawn } from "node:child_process";
import type { ExecResult } from "./types.js";

/** Output kept per command or process: enough for any diagnosis, bounded so a chatty service can't eat memory. */
export const outputBytesMax = 1024 * 1024;
/** Default limit on one command; generous because the machine is shared and loaded. */
export const execTimeoutMsDefault = 60_000;

/** Appends to a string keeping only its last `outputBytesMax` characters. */
export function appendBounded(buffer: string, chunk: string): string {
  const next = buffer + chunk;
  return next.length > outputBytesMax ? next.slice(next.length - outputBytesMax) : next;
}

/** Runs argv to completion, never throwing on a non-zero exit; code 124 on timeout. */
export function run(
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; cwd?: string } = {},
): Promise<ExecResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new Error("run: empty argv"));
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout = appendBounded(stdout, d)));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = appendBounded(stderr, d)));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGKILL");
    }, opts.timeoutMs ?? execTimeoutMsDefault);
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${stderr}${error.message}` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 124 : (code ?? (signal === null ? 1 : 128)), stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** Like `run`, but a non-zero exit is an error naming `action` and the command's stderr. */
export async function runOk(
  action: string,
  argv: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(argv, opts);
  if (result.code !== 0) {
    throw new Error(
      `${action}: \`${argv.join(" ")}\` exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 2000)}`,
    );
  }
  return result.stdout;
}

/** Signals a whole process group (children started detached lead their own group). */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone; never fall back to the bare pid, which may have been reused
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `probe` is true or `timeoutMs` passes; returns whether it became true. */
export async function pollUntil(
  probe: () => Promise<boolean> | boolean,
  { timeoutMs, intervalMs = 200 }: { timeoutMs: number; intervalMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(probe)
        .catch(() => false)
    )
      return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}
