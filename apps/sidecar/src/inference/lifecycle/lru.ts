/** A loaded model as eviction sees it. */
export interface Resident {
  id: string;
  /** When its last request ended (or its load finished): the smallest goes first. */
  lastUsedAt: number;
  /** Requests running or waiting on it, or a load in flight: never evicted then. */
  busy: boolean;
  /** What it holds, by node-llama-cpp's estimate. */
  ramBytes: number;
  vramBytes: number;
}

export interface Room {
  /** At most this many loaded at once (POTLUCK_MAX_LOADED). */
  maxLoaded: number;
  /** Free now, before any eviction. */
  freeRamBytes: number;
  freeVramBytes: number;
}

export type Eviction =
  | { ok: true; evict: string[] }
  /** Even after evicting every idle model: what is short, and how much would then be free. */
  | { ok: false; why: "count" | "memory"; evict: string[]; freeRamBytes: number; freeVramBytes: number };

/**
 * Which loaded models to unload, least recently used first, so one more needing `need` fits: under
 * the count limit and within free RAM and VRAM. A busy model is never chosen. Pure: the engine
 * unloads what this names, so the policy is tested without loading anything.
 */
export function planEviction(
  residents: readonly Resident[],
  need: { ramBytes: number; vramBytes: number },
  room: Room,
): Eviction {
  const idle = residents.filter((r) => !r.busy).sort((a, b) => a.lastUsedAt - b.lastUsedAt);
  const evict: string[] = [];
  let count = residents.length;
  let ram = room.freeRamBytes;
  let vram = room.freeVramBytes;
  const short = () => count >= room.maxLoaded || need.ramBytes > ram || need.vramBytes > vram;
  for (const resident of idle) {
    if (!short()) break;
    evict.push(resident.id);
    count -= 1;
    ram += resident.ramBytes;
    vram += resident.vramBytes;
  }
  if (!short()) return { ok: true, evict };
  const why = count >= room.maxLoaded ? "count" : "memory";
  return { ok: false, why, evict, freeRamBytes: ram, freeVramBytes: vram };
}
