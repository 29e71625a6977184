import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { RunTiming } from "./client.js";

export interface LineDriven {
  pid: number;
  once(): Promise<RunTiming>;
  close(): Promise<void>;
}

/**
 * A long-lived measuring process (raw-runner.ts, or client.ts --stdin): it prints "ready", then
 * answers every "run" line on stdin with one JSON timing line. Keeping it alive across rounds
 * keeps its start-up (module loading, the first fetch) out of every timed run.
 */
export async function startLineDriven(
  what: string,
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<LineDriven> {
  const [command, ...args] = argv;
  const child = spawn(command!, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`${what} exited`);
    return line.value;
  };
  const exited = new Promise((resolve) => child.once("exit", resolve));
  if ((await next()) !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`${what} did not start`);
  }
  return {
    pid: child.pid ?? -1,
    async once() {
      child.stdin.write("run\n");
      return JSON.parse(await next()) as RunTiming;
    },
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}
