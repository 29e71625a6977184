import { z } from "zod";
import { IsoTime, MachineName, OwnerName } from "./common.js";

export const MemoryLimits = {
  textCharsMax: 16_384,
  tagsMax: 32,
  tagCharsMax: 64,
  queryCharsMax: 4_096,
  searchLimitMax: 100,
  /** Largest embedding accepted from a caller; real embedders stay far below. */
  dimensionsMax: 4_096,
  /** A write with a 4,096-number embedding is ~90 KB of JSON; anything much larger is not a memory. */
  bodyBytesMax: 256 * 1024,
  /** A fleet search never waits longer than this for a slow peer, whatever the caller asks. */
  fleetDeadlineMsMax: 10_000,
  fleetDeadlineMsDefault: 1_500,
  /** Peers asked at once by one fleet search; a household has a handful. */
  fleetPeersMax: 32,
  /** Projects shared with other owners, all grants together; a household shares a handful. */
  sharesMax: 256,
} as const;

export const MemoryProject = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1-64 characters of letters, digits, '.', '_' or '-'");
const Tag = z.string().min(1).max(MemoryLimits.tagCharsMax);

export const MemoryWriteRequest = z.object({
  text: z.string().min(1).max(MemoryLimits.textCharsMax),
  project: MemoryProject.default("default"),
  tags: z.array(Tag).max(MemoryLimits.tagsMax).default([]),
  confidence: z.number().min(0).max(1).default(1),
  pinned: z.boolean().default(false),
  /** Optional caller-supplied vector; it must match the store's embedder dimensions. */
  embedding: z.array(z.number().finite()).min(1).max(MemoryLimits.dimensionsMax).optional(),
  /** Which embedder produced `embedding`; when given it must be the store's own. */
  embedderId: z.string().min(1).max(256).optional(),
});
export type MemoryWriteRequest = z.infer<typeof MemoryWriteRequest>;

export const MemoryRecord = z.object({
  id: z.string().min(1),
  text: z.string(),
  project: z.string(),
  tags: z.array(z.string()),
  confidence: z.number().min(0).max(1),
  pinned: z.boolean(),
  createdAt: IsoTime,
  accessedAt: IsoTime,
  embedderId: z.string(),
});
export type MemoryRecord = z.infer<typeof MemoryRecord>;

export const MemorySearchRequest = z.object({
  query: z.string().min(1).max(MemoryLimits.queryCharsMax),
  project: MemoryProject.optional(),
  minConfidence: z.number().min(0).max(1).default(0),
  limit: z.number().int().min(1).max(MemoryLimits.searchLimitMax).default(10),
  /** Cold records (not accessed within the recency window) are skipped unless asked for. */
  includeCold: z.boolean().default(false),
  /** "fleet" fans out to every own machine that opted in to peer memory search. */
  scope: z.enum(["local", "fleet"]).default("local"),
  /** Fleet scope only: how long to wait for peers before reporting them as "timeout". */
  deadlineMs: z.number().int().min(1).max(MemoryLimits.fleetDeadlineMsMax).optional(),
});
export type MemorySearchRequest = z.infer<typeof MemorySearchRequest>;

/** POST /peer/memory/search: the same filters, always answered from the peer's own store only. */
export const PeerMemorySearchRequest = MemorySearchRequest.omit({ scope: true, deadlineMs: true });
export type PeerMemorySearchRequest = z.infer<typeof PeerMemorySearchRequest>;

/**
 * One per-project grant: machines of `owner` (another owner) may search this machine's records of
 * `project`, and nothing else. Own machines need no grant (they share by the opt-in below).
 */
export const ProjectShare = z.object({ project: MemoryProject, owner: OwnerName });
export type ProjectShare = z.infer<typeof ProjectShare>;

/** GET /memory/sharing and the answer to every change of it: the opt-in and every grant. */
export const MemorySharing = z.object({
  peerSearchEnabled: z.boolean(),
  shares: z.array(ProjectShare).max(MemoryLimits.sharesMax),
});
export type MemorySharing = z.infer<typeof MemorySharing>;

/** PUT /memory/peer-search: opt this machine in or out of peer memory search without a restart. */
export const PeerSharingRequest = z.object({ enabled: z.boolean() });
export type PeerSharingRequest = z.infer<typeof PeerSharingRequest>;

export const MemorySearchHit = z.object({
  score: z.number(),
  machine: MachineName,
  record: MemoryRecord,
});
export type MemorySearchHit = z.infer<typeof MemorySearchHit>;

/** How each machine asked in a search answered, so a silent peer is never mistaken for "no hits". */
export const MachineAnswer = z.object({
  machine: MachineName,
  status: z.enum(["answered", "disabled", "unreachable", "timeout", "error"]),
  reason: z.string().optional(),
  hits: z.number().int().nonnegative(),
  latencyMs: z.number().nonnegative().optional(),
});
export type MachineAnswer = z.infer<typeof MachineAnswer>;

export const MemorySearchResponse = z.object({
  hits: z.array(MemorySearchHit),
  machines: z.array(MachineAnswer),
});
export type MemorySearchResponse = z.infer<typeof MemorySearchResponse>;

export const MemoryWriteResponse = z.object({ record: MemoryRecord });
export type MemoryWriteResponse = z.infer<typeof MemoryWriteResponse>;

/**
 * GET /memory/status: what the store holds and what it refused to use. Corrupt lines and records
 * written by another embedder are counted here (and logged at start-up), never silently searched.
 */
export const MemoryStatus = z.object({
  machine: MachineName,
  embedder: z.object({ id: z.string(), dimensions: z.number().int().positive() }),
  records: z.number().int().nonnegative(),
  hot: z.number().int().nonnegative(),
  cold: z.number().int().nonnegative(),
  pinned: z.number().int().nonnegative(),
  /** Records whose vectors came from a different embedder: kept, listed, never compared. */
  foreign: z.array(z.object({ embedderId: z.string(), records: z.number().int().positive() })),
  corrupt: z.object({ lines: z.number().int().nonnegative(), samples: z.array(z.string()) }),
  /** Embedding models found on this machine while POTLUCK_EMBED_MODEL is unset, with the setting that uses each. */
  embedderOffers: z
    .array(z.object({ model: z.string(), source: z.string(), path: z.string(), setting: z.string() }))
    .max(16)
    .optional(),
  annIndexed: z.number().int().nonnegative(),
  /** Rows of large tiers not yet in their HNSW index; search stays exact for them meanwhile. */
  annPending: z.number().int().nonnegative(),
  /** Each large tier's HNSW index: loaded from its saved graph, built here, or still building. */
  ann: z.array(
    z.object({
      project: z.string(),
      tier: z.enum(["hot", "cold"]),
      source: z.enum(["building", "built", "loaded"]),
      indexed: z.number().int().nonnegative(),
      /** Why a saved graph was not used (absent, stale, corrupt). */
      rebuildReason: z.string().optional(),
      /** Why the last save failed; search is unaffected, the next start rebuilds. */
      saveError: z.string().optional(),
    }),
  ),
  peerSearchEnabled: z.boolean(),
});
export type MemoryStatus = z.infer<typeof MemoryStatus>;
