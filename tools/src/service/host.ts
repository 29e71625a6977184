import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { repoRoot } from "../lib/repo.js";

/**
 * Everything about the machine a service plan depends on. Injected, so the macOS and Windows
 * plans are built and checked on Linux exactly as they would be there.
 */
export interface ServiceHost {
  platform: NodeJS.Platform;
  /** root on Linux and macOS (system units, LaunchDaemons); on Windows the shell must be elevated. */
  root: boolean;
  uid: number;
  home: string;
  env: NodeJS.ProcessEnv;
  /** The node binary the services run under: the one running this command. */
  nodePath: string;
  /** The checkout whose bin/*.mjs the services run (no build step: bins run TypeScript via tsx). */
  repoRoot: string;
  /** The full path of a program on PATH, or undefined. */
  which(program: string): string | undefined;
}

export function currentHost(): ServiceHost {
  const uid = process.getuid?.() ?? -1;
  return {
    platform: process.platform,
    root: process.platform === "win32" ? true : uid === 0,
    uid,
    home: homedir(),
    env: process.env,
    nodePath: process.execPath,
    repoRoot,
    which,
  };
}

function which(program: string): string | undefined {
  if (process.platform === "win32") {
    try {
      return execFileSync("where.exe", [program], { encoding: "utf8" }).split(/\r?\n/)[0]?.trim() || undefined;
    } catch {
      return undefined;
    }
  }
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(`${dir}/${program}`)) return `${dir}/${program}`;
  }
  return undefined;
}
