import { z } from "zod";
import { IsoTime, MachineName } from "./common.js";

export const MemoryLimits = {
  textCharsMax: 16_384,
  tagsMax: 32,
  tagCharsMax: 64,
  queryCharsMax: 4_096,
  searchLimitMax: 100,
  /** Largest embedding accepted from a caller; real embedders stay far below. */
  dimensionsMax: 4_096,
} as const;

const Project = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1-64 characters of letters, digits, '.', '_' or '-'");
const Tag = z.string().min(1).max(MemoryLimits.tagCharsMax);

export const MemoryWriteRequest = z.object({
  text: z.string().min(1).max(MemoryLimits.textCharsMax),
  project: Project.default("default"),
  tags: z.array(Tag).max(MemoryLimits.tagsMax).default([]),
  confidence: z.number().min(0).max(1).default(1),
  pinned: z.boolean().default(false),
  /** Optional caller-supplied vector; it must match the store's embedder dimensions. */
  embedding: z.array(z.number().finite()).min(1).max(MemoryLimits.dimensionsMax).optional(),
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
  project: Project.optional(),
  minConfidence: z.number().min(0).max(1).default(0),
  limit: z.number().int().min(1).max(MemoryLimits.searchLimitMax).default(10),
  /** Cold records (not accessed within the recency window) are skipped unless asked for. */
  includeCold: z.boolean().default(false),
  /** "fleet" fans out to every own machine that opted in to peer memory search. */
  scope: z.enum(["local", "fleet"]).default("local"),
});
export type MemorySearchRequest = z.infer<typeof MemorySearchRequest>;

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
