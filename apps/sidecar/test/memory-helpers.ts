import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLexicalEmbedder } from "../src/memory/lexical-embedder.js";
import { MemoryStore, type MemoryStoreOptions } from "../src/memory/store.js";

/** A scratch directory per test, removed by the returned cleanup. */
export function scratchDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "potluck-memory-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A movable clock for the recency rules. */
export function manualClock(startMs = Date.parse("2026-06-01T00:00:00Z")) {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
}

export const dayMs = 86_400_000;

export function openStore(dir: string, options: Partial<MemoryStoreOptions> = {}): Promise<MemoryStore> {
  return MemoryStore.open({ dir, embedder: createLexicalEmbedder(), sweepIntervalMs: 0, ...options });
}

/** The fields zod would default on a write, for calling the store directly. */
export const defaults: { project: string; tags: string[]; confidence: number; pinned: boolean } = {
  project: "default",
  tags: [],
  confidence: 1,
  pinned: false,
};
