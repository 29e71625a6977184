import type { ServiceHost } from "../../src/service/host.js";
import type { RunResult, Step, SystemOps } from "../../src/service/steps.js";

/** A host of any OS, for plans built on Linux. */
export function hostOf(platform: NodeJS.Platform, over: Partial<ServiceHost> = {}): ServiceHost {
  const win = platform === "win32";
  return {
    platform,
    root: true,
    uid: 501,
    home: platform === "darwin" ? "/Users/ann" : win ? "C:\\Users\\ann" : "/home/ann",
    env: win ? { LOCALAPPDATA: "C:\\Users\\ann\\AppData\\Local", ProgramData: "C:\\ProgramData" } : {},
    nodePath:
      platform === "darwin" ? "/opt/homebrew/bin/node" : win ? "C:\\Program Files\\nodejs\\node.exe" : "/usr/bin/node",
    repoRoot: platform === "darwin" ? "/Users/ann/potluck" : win ? "C:\\Users\\ann\\potluck" : "/opt/potluck",
    which: (program) =>
      program.startsWith("nats-server")
        ? platform === "darwin"
          ? "/opt/homebrew/bin/nats-server"
          : win
            ? "C:\\nats\\nats-server.exe"
            : "/usr/bin/nats-server"
        : undefined,
    ...over,
  };
}

/** Records what would be done; answers commands from `answers` (by the command line's start). */
export function recordingOps(answers: Record<string, RunResult> = {}): SystemOps & { log: string[] } {
  const log: string[] = [];
  const files = new Set<string>();
  return {
    log,
    async run(argv) {
      log.push(`run ${argv.join(" ")}`);
      const key = Object.keys(answers).find((prefix) => argv.join(" ").startsWith(prefix));
      return key === undefined ? { code: 0, stdout: "", stderr: "" } : (answers[key] as RunResult);
    },
    exists: (path) => files.has(path) || path.endsWith(".exe"),
    mkdir: (path, mode) => void log.push(`mkdir ${path} ${mode.toString(8)}`),
    writeFile(path, _content, mode) {
      files.add(path);
      log.push(`write ${path} ${mode.toString(8)}`);
    },
    copyFile: (from, to) => void log.push(`copy ${from} ${to}`),
    remove: (path) => void log.push(`remove ${path}`),
  };
}

export function fileSteps(steps: readonly Step[]): Extract<Step, { kind: "file" }>[] {
  return steps.filter((s): s is Extract<Step, { kind: "file" }> => s.kind === "file");
}
