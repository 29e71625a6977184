import { homedir } from "node:os";
import { posix, win32 } from "node:path";

/** What the data-dir convention depends on; each defaults to this process, tests inject another OS. */
export interface DataDirContext {
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

/**
 * Where Potluck keeps its state by each OS's convention: ~/Library/Application Support/Potluck on
 * macOS (what Finder and Time Machine expect of an app), %LOCALAPPDATA%\Potluck on Windows (per
 * machine, not roamed: keys and models must not follow a profile around), ~/.potluck elsewhere.
 * The one place this is decided; every config default and every command uses it.
 */
export function platformDataDir(context: DataDirContext = {}): string {
  const { platform = process.platform, env = process.env, home = homedir() } = context;
  if (platform === "darwin") return posix.join(home, "Library", "Application Support", "Potluck");
  if (platform === "win32") return win32.join(env.LOCALAPPDATA || win32.join(home, "AppData", "Local"), "Potluck");
  return posix.join(home, ".potluck");
}

/** A command's data dir: its --data-dir flag, else POTLUCK_DATA_DIR, else the OS convention. */
export function resolveDataDir(flag: string | undefined, context: DataDirContext = {}): string {
  const env = context.env ?? process.env;
  return flag ?? (env.POTLUCK_DATA_DIR || platformDataDir(context));
}
