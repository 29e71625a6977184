import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Bounds of a probe-load. The probe starts a Node process, loads llama.cpp's bindings, maps the
 * file and evaluates one token; a large model on a slow disk takes tens of seconds.
 */
export const ProbeLoadLimits = {
  /** A probe that has not finished by then is killed and the model refused (a hang is a failure too). */
  timeoutMs: 180_000,
  /** Only the tail of the child's output is kept for the reason; llama.cpp names its failed assertion last. */
  outputBytesMax: 8 * 1024,
  /** Files known to load (path, size, mtime): a model unloaded and loaded again is not probed twice. */
  verifiedFilesMax: 256,
  /** The probe's context: enough for one token, so the probe costs little memory beside the weights. */
  contextTokens: 256,
} as const;

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Loads a model file in a child process before the sidecar loads it in its own. llama.cpp asserts
 * on some contradictions between a GGUF's metadata and its tensors (a head count of 0, shapes the
 * metadata does not imply) and an assertion aborts the whole process, which no try/catch can stop.
 * In the child the abort ends only the child, and its reason comes back; the sidecar stays up and
 * lists the model as failed with that reason.
 */
export async function probeLoad(path: string, timeoutMs: number = ProbeLoadLimits.timeoutMs): Promise<ProbeResult> {
  const absolute = resolve(path);
  const identity = await fileIdentity(absolute);
  if (identity === undefined) return { ok: false, reason: `cannot read ${absolute}` };
  if (verified.has(identity)) return { ok: true };
  const result = await runProbe(absolute, timeoutMs);
  if (result.ok) remember(identity);
  return result;
}

/** The child's program, beside this file (plain JavaScript: it starts without a TypeScript loader). */
const probeChild = fileURLToPath(new URL("./probe-child.mjs", import.meta.url));

function runProbe(path: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [probeChild, path, String(ProbeLoadLimits.contextTokens)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (part: Buffer) => {
      output = (output + part.toString("utf8")).slice(-ProbeLoadLimits.outputBytesMax);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      done({ ok: false, reason: `starting the probe process: ${error.message}` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && output.includes("probe-load ok")) return done({ ok: true });
      const how = timedOut
        ? `did not finish within ${timeoutMs} ms`
        : signal !== null
          ? `crashed (${signal})`
          : `failed (exit code ${code})`;
      done({ ok: false, reason: `loading it in a probe process ${how}: ${lastLines(output) || "no output"}` });
    });
  });
}

/** llama.cpp's assertion or the thrown error is at the end; a stack trace after it is noise. */
function lastLines(output: string): string {
  const lines = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("at ") && !line.startsWith("Node.js v"));
  return lines.slice(-2).join(" / ").slice(0, 500);
}

const verified = new Set<string>();

function remember(identity: string): void {
  if (verified.size >= ProbeLoadLimits.verifiedFilesMax) verified.delete(verified.values().next().value as string);
  verified.add(identity);
}

/** A changed file (size or modification time) is probed again. */
async function fileIdentity(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info === undefined || !info.isFile() ? undefined : `${path}\n${info.size}\n${info.mtimeMs}\n${info.ino}`;
}
