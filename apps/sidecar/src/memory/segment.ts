import usearch, { type Matches } from "usearch";
import { AnnIndex, type AnnOptions, type AnnPersistence, type AnnState } from "./ann-index.js";
import type { Entry, EntrySegment, ScoredEntry } from "./entry.js";

/** The exact scan runs on one thread: measured faster than two on this 2-core class of machine. */
const scanThreads = 1;

/**
 * One contiguous Float32 matrix of unit vectors (one row per record) plus per-row metadata the
 * filters read without touching records. Search is an exact inner-product scan (cosine, since
 * every row is unit length) by usearch's SIMD kernel; past `ann.thresholdRows` an HNSW index is
 * built in the background and used when its answer can be trusted. Deletes swap the last row in,
 * so the matrix never has holes.
 */
export class VectorSegment implements EntrySegment {
  private data: Float32Array;
  private confidence: Float32Array;
  private accessedMs: Float64Array;
  private entries: Entry[] = [];
  private ann: AnnIndex | undefined;
  pinnedRows = 0;

  constructor(
    readonly dimensions: number,
    private readonly annOptions: AnnOptions,
    /** Where this segment's HNSW graph is saved and loaded from; undefined keeps it in memory only. */
    private readonly annPersistence?: AnnPersistence,
    capacityRows = 64,
  ) {
    this.data = new Float32Array(capacityRows * dimensions);
    this.confidence = new Float32Array(capacityRows);
    this.accessedMs = new Float64Array(capacityRows);
  }

  get size(): number {
    return this.entries.length;
  }

  get annIndexed(): number {
    return this.ann?.indexed ?? 0;
  }

  /** Rows past the ANN threshold still waiting to be indexed; 0 when search can use the index (or needs none). */
  get annPending(): number {
    return this.ann === undefined || this.ann.ready ? 0 : this.size - this.ann.indexed;
  }

  /** Whether the HNSW graph was loaded or built, and why a saved one was not used; undefined below the threshold. */
  get annState(): AnnState | undefined {
    return this.ann?.status;
  }

  rows(): readonly Entry[] {
    return this.entries;
  }

  add(entry: Entry): void {
    const row = this.entries.length;
    if (row * this.dimensions >= this.data.length) this.grow();
    this.data.set(entry.record.vector, row * this.dimensions);
    this.confidence[row] = entry.record.confidence;
    this.accessedMs[row] = Date.parse(entry.record.accessedAt);
    this.entries.push(entry);
    entry.segment = this;
    entry.row = row;
    if (entry.record.pinned) this.pinnedRows++;
    this.ann?.add(entry);
    if (this.ann === undefined && this.size >= this.annOptions.thresholdRows)
      this.ann = new AnnIndex(this, this.annOptions, this.annPersistence);
  }

  remove(entry: Entry): void {
    if (entry.segment !== this) throw new Error(`removing entry ${entry.record.id}: not in this segment`);
    const last = this.entries.length - 1;
    const row = entry.row;
    const moved = this.entries[last];
    if (moved === undefined) throw new Error("removing from an empty segment");
    if (row !== last) {
      this.data.copyWithin(row * this.dimensions, last * this.dimensions, (last + 1) * this.dimensions);
      this.confidence[row] = this.confidence[last] ?? 0;
      this.accessedMs[row] = this.accessedMs[last] ?? 0;
      this.entries[row] = moved;
      moved.row = row;
    }
    this.entries.pop();
    if (entry.record.pinned) this.pinnedRows--;
    this.ann?.remove(entry);
    entry.segment = undefined;
    entry.row = -1;
  }

  /** Records that an entry was just read; the cold sweep uses this, not the record. */
  touched(entry: Entry): void {
    this.accessedMs[entry.row] = Date.parse(entry.record.accessedAt);
  }

  /** Entries not accessed since `beforeMs` and not pinned: the ones to move to the cold tier. */
  staleEntries(beforeMs: number): Entry[] {
    const stale: Entry[] = [];
    for (let row = 0; row < this.entries.length; row++) {
      if ((this.accessedMs[row] ?? 0) < beforeMs && this.entries[row]?.record.pinned === false)
        stale.push(this.entries[row] as Entry);
    }
    return stale;
  }

  /** How many rows a filter would drop: the scan asks for this many extra so `limit` survive it. */
  excludedRows(minConfidence: number): number {
    let excluded = this.pinnedRows;
    if (minConfidence > 0)
      for (let row = 0; row < this.entries.length; row++) if ((this.confidence[row] ?? 0) < minConfidence) excluded++;
    return excluded;
  }

  /**
   * The `k` rows most similar to `query` (unit vector), best first. `exact` forces the scan even
   * when an ANN index is ready (the bench measures one against the other).
   */
  nearest(query: Float32Array, k: number, { exact = false }: { exact?: boolean } = {}): ScoredEntry[] {
    const count = Math.min(k, this.entries.length);
    if (count === 0) return [];
    if (!exact && this.ann?.ready === true) {
      const hits = this.rescored(
        this.ann.search(query, Math.min(this.entries.length, Math.max(count, this.annOptions.candidatesMin))),
        query,
      );
      if (hits.length > count) hits.length = count;
      return hits;
    }
    const matrix = this.data.subarray(0, this.entries.length * this.dimensions);
    const found = usearch.exactSearch(
      matrix,
      query,
      this.dimensions,
      count,
      usearch.MetricKind.IP,
      scanThreads,
    ) as Matches;
    const hits: ScoredEntry[] = [];
    for (let i = 0; i < found.keys.length; i++) {
      const entry = this.entries[Number(found.keys[i])];
      // usearch reports inner-product distance as 1 - dot.
      if (entry !== undefined) hits.push({ entry, score: 1 - (found.distances[i] ?? 1) });
    }
    return hits;
  }

  /** Exact cosine for approximate candidates, re-sorted: the index only chooses which rows. */
  private rescored(hits: ScoredEntry[], query: Float32Array): ScoredEntry[] {
    for (const hit of hits) {
      const offset = hit.entry.row * this.dimensions;
      let sum = 0;
      for (let i = 0; i < this.dimensions; i++) sum += (this.data[offset + i] ?? 0) * (query[i] ?? 0);
      hit.score = sum;
    }
    return hits.sort((a, b) => b.score - a.score);
  }

  /** The vector of one row, without copying. */
  vectorAt(row: number): Float32Array {
    return this.data.subarray(row * this.dimensions, (row + 1) * this.dimensions);
  }

  close(): void {
    this.ann?.close();
    this.ann = undefined;
  }

  private grow(): void {
    const rows = Math.max(64, this.entries.length * 2);
    const data = new Float32Array(rows * this.dimensions);
    data.set(this.data.subarray(0, this.entries.length * this.dimensions));
    this.data = data;
    const confidence = new Float32Array(rows);
    confidence.set(this.confidence.subarray(0, this.entries.length));
    this.confidence = confidence;
    const accessed = new Float64Array(rows);
    accessed.set(this.accessedMs.subarray(0, this.entries.length));
    this.accessedMs = accessed;
  }
}
