import { readdirSync, realpathSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";

/** What one search may cost, checked before each step: model folders are not walked without end. */
export interface WalkLimits {
  /** Folder levels below a root that are entered. */
  depthMax: number;
  /** Directory entries looked at, over every root of one discovery. */
  entriesMax: number;
}

/** Counts entries across several walks, so the limit holds for a whole discovery. */
export class WalkBudget {
  private used = 0;
  exhausted = false;
  constructor(readonly limits: WalkLimits) {}
  /** Takes one entry; false (and `exhausted`) once the limit is reached. */
  take(): boolean {
    if (this.used >= this.limits.entriesMax) {
      this.exhausted = true;
      return false;
    }
    this.used++;
    return true;
  }
}

/**
 * Every `*.gguf` file under `root`, sorted, symlinks followed (the Hugging Face cache is made of
 * them). Hidden folders are skipped; a folder reached twice through links is walked once.
 */
export function findGgufFiles(root: string, budget: WalkBudget, depthMax = budget.limits.depthMax): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, depth: number) => {
    const real = realOrUndefined(dir);
    if (real === undefined || seen.has(real)) return;
    seen.add(real);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return; // unreadable: nothing to list there
    }
    for (const name of names) {
      if (name.startsWith(".") || !budget.take()) continue;
      const path = join(dir, name);
      const stats = statOrUndefined(path);
      if (stats?.isDirectory() === true) {
        if (depth < depthMax) walk(path, depth + 1);
      } else if (stats?.isFile() === true && name.toLowerCase().endsWith(".gguf")) found.push(path);
    }
  };
  walk(root, 0);
  return found;
}

export function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function realOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}
