import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MeshState, Roster } from "@potluck/protocol";

/** Where `potluck join` keeps what it learned: DATA_DIR/mesh/{state,roster}.json. */
export function meshDir(dataDir: string): string {
  return join(dataDir, "mesh");
}

/** The roster as last synced; point the sidecar's POTLUCK_ROSTER_FILE here to share it. */
export function rosterFile(dataDir: string): string {
  return join(meshDir(dataDir), "roster.json");
}

export function readMeshState(dataDir: string): MeshState | undefined {
  const path = join(meshDir(dataDir), "state.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const parsed = MeshState.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(`reading ${path}: ${parsed.error.issues[0]?.message ?? "invalid"}; remove it and join again`);
  return parsed.data;
}

/**
 * The roster as the last join or roster poll saved it (its signature was checked before it was
 * written), or undefined when there is none or it no longer parses.
 */
export function readSavedRoster(dataDir: string): Roster | undefined {
  try {
    const parsed = Roster.safeParse(JSON.parse(readFileSync(rosterFile(dataDir), "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function writeMeshState(dataDir: string, state: MeshState): void {
  writeAtomic(join(meshDir(dataDir), "state.json"), JSON.stringify(MeshState.parse(state), null, 2));
}

export function writeRoster(dataDir: string, roster: Roster): void {
  writeAtomic(rosterFile(dataDir), JSON.stringify(roster, null, 2));
}

/** Write-then-rename, so a reader (the sidecar) never sees half a file. */
function writeAtomic(path: string, text: string): void {
  mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${text}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
