import { execFile } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs one command; injected so the mesh code can be driven in tests and in lab hosts alike. */
export type Runner = (argv: readonly string[]) => Promise<RunResult>;

/** No wg/ip call should take long; a hung one must not hang the daemon. */
const commandTimeoutMs = 30_000;

export const runCommand: Runner = (argv) =>
  new Promise((resolve) => {
    const [command, ...args] = argv;
    // wireguard-go daemonizes; without LOG_LEVEL its child gets /dev/null, not our pipes.
    const env = { ...process.env };
    delete env.LOG_LEVEL;
    execFile(
      command ?? "false",
      args,
      { timeout: commandTimeoutMs, env, encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 127;
        resolve({
          code,
          stdout,
          stderr: stderr || (error !== null && typeof error.code !== "number" ? error.message : ""),
        });
      },
    );
  });

/** Runs and throws on a non-zero exit, naming the action and the command's complaint. */
export async function runOrThrow(run: Runner, action: string, argv: readonly string[]): Promise<string> {
  const result = await run(argv);
  if (result.code !== 0)
    throw new Error(
      `${action}: \`${argv.join(" ")}\` exited ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 500)}`,
    );
  return result.stdout;
}
