import { execFile } from "node:child_process";

/** Runs a command to completion; never throws for a non-zero exit (the caller decides). */
export function run(argv: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const [command, ...args] = argv;
  return new Promise((resolve) => {
    execFile(command as string, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command and throws, naming the action, unless it exits 0. */
export async function runOk(action: string, argv: string[]): Promise<string> {
  const result = await run(argv);
  if (result.code !== 0) throw new Error(`${action}: ${argv.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}
