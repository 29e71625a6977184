import type { StoredRecord } from "./record-log.js";

/** A record as the search side sees it: where its vector sits and a key for the ANN index. */
export interface Entry {
  record: StoredRecord;
  segment: EntrySegment | undefined;
  row: number;
}

export interface ScoredEntry {
  entry: Entry;
  score: number;
}

/**
 * The segment holding an entry, as the entry, the store and the ANN index see it. `VectorSegment`
 * is the one implementation; naming only what they use lets the segment and its index share
 * `Entry` without importing each other.
 */
export interface EntrySegment {
  readonly dimensions: number;
  rows(): readonly Entry[];
  remove(entry: Entry): void;
  /** Records that an entry was just read. */
  touched(entry: Entry): void;
}
