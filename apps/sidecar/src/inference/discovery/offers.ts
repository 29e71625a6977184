import type { MemoryStatus } from "@potluck/protocol";
import type { ModelSource } from "../engine.js";

export type EmbedderOffer = NonNullable<MemoryStatus["embedderOffers"]>[number];

/** At most this many offers: a choice to read, not an inventory. */
const offersMax = 16;

/**
 * The usable embedding models discovery found, each with the exact setting that makes memory use
 * it. Offered only, never switched to: records embedded by another embedder would stop being
 * searchable (the store keeps them apart by embedder id) until they are embedded again.
 */
export function embedderOffers(sources: readonly ModelSource[]): EmbedderOffer[] {
  return sources
    .filter((s) => s.kind === "embedding" && s.problem === undefined)
    .slice(0, offersMax)
    .map((s) => ({
      model: s.id,
      source: s.source ?? "configured",
      path: s.path,
      setting: `POTLUCK_EMBED_MODEL=${shellQuoted(s.path)}`,
    }));
}

/** Single-quoted for a POSIX shell when it holds anything but plain path characters. */
function shellQuoted(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}
