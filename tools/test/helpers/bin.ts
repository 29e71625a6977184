import { execFile } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../../src/lib/repo.js";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Each run starts tsx and loads every command; allow for a loaded machine. */
const runTimeoutMsDefault = 60_000;

/**
 * Runs one of the repository's real bins (bin/NAME) as a user would, and collects what it printed;
 * `cwd` elsewhere than the repo is a user running it from their own directory.
 */
export function runBin(
  bin: string,
  args: readonly string[],
  timeoutMs = runTimeoutMsDefault,
  env: NodeJS.ProcessEnv = process.env,
  cwd = repoRoot,
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, "bin", bin), ...args],
      { cwd, timeout: timeoutMs, encoding: "utf8", env },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export const potluck = (...args: string[]): Promise<Ran> => runBin("potluck.mjs", args);
