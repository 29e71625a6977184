import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { RunResult, SystemOps } from "./steps.js";

/** A service manager's answer is a few KB; this bounds a wedged or huge one. */
const outputBytesMax = 1024 * 1024;
const commandTimeoutMs = 60_000;

/** The real machine: files written with their modes, commands run without a shell. */
export const nodeOps: SystemOps = {
  run(argv) {
    const [program = "", ...args] = argv;
    return new Promise<RunResult>((resolve) => {
      execFile(
        program,
        args,
        { encoding: "utf8", maxBuffer: outputBytesMax, timeout: commandTimeoutMs },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : 127;
          resolve({ code, stdout, stderr: stderr || (error?.message ?? "") });
        },
      );
    });
  },
  exists: (path) => existsSync(path),
  mkdir(path, mode) {
    mkdirSync(path, { recursive: true, mode });
  },
  writeFile(path, content, mode) {
    writeFileSync(path, content, { mode });
    chmodSync(path, mode); // an existing file keeps its old mode through writeFileSync
  },
  copyFile: (from, to) => copyFileSync(from, to),
  remove: (path) => rmSync(path, { force: true }),
};
