import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MeshState } from "@potluck/protocol";

/**
 * The coordinator key `potluck join` pinned in DATA_DIR/mesh/state.json (apps/mesh files.ts), so
 * the sidecar's roster source checks the coordinator's answers against the same key as the mesh
 * agent. Undefined when this data dir has not joined (or joined before keys were pinned).
 */
export function pinnedCoordinatorKey(dataDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, "mesh", "state.json"), "utf8");
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = MeshState.safeParse(value);
  return parsed.success ? parsed.data.coordinatorKey : undefined;
}
