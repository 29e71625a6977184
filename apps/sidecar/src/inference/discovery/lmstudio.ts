import { readFileSync } from "node:fs";
import { join } from "node:path";
import { findGgufFiles, statOrUndefined, type WalkBudget } from "./folders.js";

/**
 * LM Studio's downloads: `<models>/<publisher>/<repo>/*.gguf` under ~/.lmstudio/models (or the
 * home that ~/.lmstudio-home-pointer names), and ~/.cache/lm-studio/models from older versions.
 */
export function lmStudioFiles(home: string, budget: WalkBudget): string[] {
  const roots = [join(lmStudioHome(home), "models"), join(home, ".cache", "lm-studio", "models")];
  const files: string[] = [];
  for (const root of new Set(roots))
    if (statOrUndefined(root)?.isDirectory() === true)
      // publisher/repo/file.gguf: two folder levels, and one more for repos that keep quantisations in folders.
      files.push(...findGgufFiles(root, budget, Math.min(3, budget.limits.depthMax)));
  return files;
}

function lmStudioHome(home: string): string {
  try {
    const pointed = readFileSync(join(home, ".lmstudio-home-pointer"), "utf8").trim();
    if (pointed.length > 0 && pointed.length < 4096) return pointed;
  } catch {
    // no pointer file: the default home
  }
  return join(home, ".lmstudio");
}
