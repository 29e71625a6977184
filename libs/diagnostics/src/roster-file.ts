import { readFile } from "node:fs/promises";
import { Roster, type RosterEntry } from "@potluck/protocol";
import type { RosterSource } from "./probes.js";

/** A roster file is a few kilobytes a machine; this bounds a wrong path pointing at something huge. */
const rosterFileBytesMax = 8 * 1024 * 1024;

/** A roster kept in a file in the coordinator's `Roster` schema (a static mesh, or the lab). */
export function fileRosterSource(path: string): RosterSource {
  const list = async (signal: AbortSignal): Promise<RosterEntry[]> => {
    let text: string;
    try {
      text = await readFile(path, { encoding: "utf8", signal });
    } catch (error) {
      throw new Error(`reading roster ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (text.length > rosterFileBytesMax) throw new Error(`reading roster ${path}: larger than ${rosterFileBytesMax} bytes`);
    const parsed = Roster.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`reading roster ${path}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    return parsed.data.machines;
  };
  return { list, lookup: async (name, signal) => (await list(signal)).find((m) => m.name === name) ?? null };
}
