import { readFile, stat } from "node:fs/promises";
import { Roster, type RosterEntry } from "@potluck/protocol";

/** A machine this sidecar may call or be called by. */
export interface PeerRecord {
  machine: string;
  owner: string;
  /** Base URL of its sidecar over the mesh, e.g. http://100.64.0.3:8321 */
  url: string;
  identityPublicKey: string;
}

/**
 * Who is on the mesh and which key each machine signs with. A static roster file implements it
 * until the coordinator client lands and replaces it behind the same interface.
 */
export interface PeerDirectory {
  /** Every other machine (never this one). */
  peers(): Promise<PeerRecord[]>;
  /** The identity key a machine signs with, or undefined when it is not on the roster. */
  keyFor(machine: string): Promise<string | undefined>;
}

/** An empty directory: a machine alone, before it joins a mesh. */
export const noPeers: PeerDirectory = { peers: async () => [], keyFor: async () => undefined };

/**
 * A roster file in the coordinator's `Roster` schema. Re-read when its modification time changes,
 * so editing it needs no restart; a broken file keeps the last good roster and says why once.
 */
export function rosterFileDirectory(options: {
  path: string;
  self: string;
  peerPort: number;
  urlOverrides?: ReadonlyMap<string, string>;
  log?: (message: string) => void;
}): PeerDirectory {
  const { path, self, peerPort, urlOverrides = new Map(), log = () => undefined } = options;
  let cached: { mtimeMs: number; entries: RosterEntry[] } | undefined;
  const entries = async (): Promise<RosterEntry[]> => {
    try {
      const { mtimeMs } = await stat(path);
      if (cached?.mtimeMs === mtimeMs) return cached.entries;
      const parsed = Roster.safeParse(JSON.parse(await readFile(path, "utf8")));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)[0] ?? "invalid roster");
      cached = { mtimeMs, entries: parsed.data.machines };
    } catch (error) {
      log(`reading roster ${path}: ${error instanceof Error ? error.message : String(error)}${cached === undefined ? "" : "; keeping the last good roster"}`);
      if (cached === undefined) return [];
    }
    return cached.entries;
  };
  const toRecord = (entry: RosterEntry): PeerRecord => ({
    machine: entry.name,
    owner: entry.owner,
    url: urlOverrides.get(entry.name) ?? `http://${entry.meshIp}:${peerPort}`,
    identityPublicKey: entry.identityPublicKey,
  });
  return {
    peers: async () => (await entries()).filter((e) => e.name !== self).map(toRecord),
    keyFor: async (machine) => (await entries()).find((e) => e.name === machine || e.id === machine)?.identityPublicKey,
  };
}
