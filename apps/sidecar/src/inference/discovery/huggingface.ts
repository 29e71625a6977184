import { readdirSync } from "node:fs";
import { join } from "node:path";
import { findGgufFiles, statOrUndefined, type WalkBudget } from "./folders.js";

export interface HuggingFaceEnv {
  HF_HOME?: string | undefined;
  HF_HUB_CACHE?: string | undefined;
}

/**
 * GGUF files in the Hugging Face hub cache: `models--<org>--<repo>/snapshots/<rev>/…`, whose files
 * are symlinks into `blobs/` (followed, but served by their snapshot path so split parts keep
 * their names). Of several snapshots of one repo, the newest (modification time) wins.
 */
export function huggingFaceFiles(env: HuggingFaceEnv, home: string, budget: WalkBudget): string[] {
  const hub = env.HF_HUB_CACHE ?? join(env.HF_HOME ?? join(home, ".cache", "huggingface"), "hub");
  const files: string[] = [];
  for (const repo of listDir(hub).filter((name) => name.startsWith("models--"))) {
    if (!budget.take()) break;
    const snapshots = join(hub, repo, "snapshots");
    const newest = listDir(snapshots)
      .map((rev) => ({ rev, mtime: statOrUndefined(join(snapshots, rev))?.mtimeMs ?? -1 }))
      .filter((s) => s.mtime >= 0)
      .sort((a, b) => b.mtime - a.mtime || a.rev.localeCompare(b.rev))[0];
    if (newest !== undefined) files.push(...findGgufFiles(join(snapshots, newest.rev), budget));
  }
  return files;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
