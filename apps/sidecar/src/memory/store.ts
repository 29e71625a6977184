import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  ErrorCode,
  MemoryLimits,
  PotluckHttpError,
  type MemoryRecord,
  type MemoryWriteRequest,
} from "@potluck/protocol";
import type { Embedder } from "./embedder.js";
import { normalizeInPlace } from "./embedder.js";
import { LruCache } from "./query-cache.js";
import { RecordLog, type CorruptReport, type StoredRecord } from "./record-log.js";
import type { AnnOptions, AnnState } from "./ann-index.js";
import type { Entry, ScoredEntry } from "./entry.js";
import { VectorSegment } from "./segment.js";

export interface MemoryStoreOptions {
  /** Directory holding memory.log (POTLUCK_DATA_DIR/memory). */
  dir: string;
  embedder: Embedder;
  /** Clock in epoch ms; tests move it to age records into the cold tier. */
  now?: () => number;
  /** A record not accessed for this long is cold: skipped by search unless asked for or re-accessed. */
  coldAfterMs?: number;
  /** How often the hot tier is swept for records that went cold. */
  sweepIntervalMs?: number;
  queryCacheEntriesMax?: number;
  /** Access-time updates are batched to disk this often (and on close). */
  touchFlushMs?: number;
  ann?: Partial<AnnOptions>;
  /** Save HNSW graphs under dir/ann and load them at the next start (default true). */
  persistAnn?: boolean;
}

export interface SearchFilters {
  project?: string | undefined;
  minConfidence: number;
  limit: number;
  includeCold: boolean;
}

export interface ScoredRecord {
  score: number;
  record: MemoryRecord;
}

export interface StoreCounts {
  records: number;
  hot: number;
  cold: number;
  pinned: number;
  foreign: { embedderId: string; records: number }[];
  corrupt: CorruptReport;
  annIndexed: number;
  annPending: number;
}

/** One tier's HNSW index: loaded from disk, or built (and why a saved one was not used). */
export interface AnnTierState extends AnnState {
  project: string;
  tier: "hot" | "cold";
}

export const StoreDefaults = {
  coldAfterMs: 30 * 24 * 3600 * 1000,
  sweepIntervalMs: 60_000,
  queryCacheEntriesMax: 1_024,
  touchFlushMs: 5_000,
  /** Pending access-time updates past this many are flushed at once rather than waiting. */
  touchPendingMax: 10_000,
  /**
   * HNSW only past 20,000 rows per tier: the exact SIMD scan stays well under the 1 ms goal at
   * 10,000 x 384 (BENCHMARKS.md, "Retrieval"; field note 4 put the brute-force limit at 5-10k for
   * numpy, SIMD moves it up). The graph holds i8
   * vectors (384 bytes each, half of bf16, and VNNI dot products), and the best 20 candidates are
   * re-scored exactly in f32: i8's coarse ranking loses little once 20 are re-scored.
   * tools/bench/retrieval/ann-sweep.ts times every variant interleaved at 100,000 rows; i8 with 20
   * re-scored candidates beat bf16 with 10 on both recall and latency (BENCHMARKS.md, "Retrieval").
   */
  ann: {
    thresholdRows: 20_000,
    buildBatchRows: 512,
    connectivity: 16,
    expansionSearch: 96,
    quantization: "i8",
    candidatesMin: 20,
  } satisfies AnnOptions,
} as const;

interface Tiers {
  hot: VectorSegment;
  cold: VectorSegment;
  lastSweepMs: number;
}

/**
 * The memory store: records in memory, their vectors in per-project hot and cold matrices, every
 * change appended to the on-disk log first. Only records embedded by the current embedder are
 * searchable; others are kept, counted and reported as foreign.
 */
export class MemoryStore {
  private readonly entries = new Map<string, Entry>();
  private readonly foreign = new Map<string, StoredRecord>();
  private readonly tiers = new Map<string, Tiers>();
  private readonly pinned = new Set<Entry>();
  private readonly queryCache: LruCache<Float32Array>;
  private readonly pendingTouches = new Set<string>();
  private readonly touchTimer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly coldAfterMs: number;
  private readonly sweepIntervalMs: number;
  private readonly annDir: string | undefined;
  readonly annOptions: AnnOptions;
  private closed = false;

  private constructor(
    private readonly log: RecordLog,
    readonly embedder: Embedder,
    readonly corrupt: CorruptReport,
    options: MemoryStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.coldAfterMs = options.coldAfterMs ?? StoreDefaults.coldAfterMs;
    this.sweepIntervalMs = options.sweepIntervalMs ?? StoreDefaults.sweepIntervalMs;
    this.annOptions = { ...StoreDefaults.ann, ...options.ann };
    this.annDir = options.persistAnn === false ? undefined : join(options.dir, "ann");
    this.queryCache = new LruCache(options.queryCacheEntriesMax ?? StoreDefaults.queryCacheEntriesMax);
    this.touchTimer = setInterval(() => this.flushTouches(), options.touchFlushMs ?? StoreDefaults.touchFlushMs);
    this.touchTimer.unref();
  }

  /** Opens the log in `options.dir`, replays it and sorts records into searchable, foreign and corrupt. */
  static async open(options: MemoryStoreOptions): Promise<MemoryStore> {
    const { log, replay } = await RecordLog.open(options.dir).catch((error: unknown) => {
      throw new Error(
        `opening memory store in ${options.dir}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    });
    const store = new MemoryStore(log, options.embedder, replay.corrupt, options);
    for (const record of replay.records.values()) store.adopt(record);
    store.removeOrphanAnnFiles();
    return store;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Rows per project tier past which search may use the HNSW index. */
  get annThresholdRows(): number {
    return this.annOptions.thresholdRows;
  }

  get cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.queryCache.hits, misses: this.queryCache.misses, size: this.queryCache.size };
  }

  /** Validates, embeds and durably stores one memory. Bad vectors are a 400 naming `embedding`. */
  async add(input: MemoryWriteRequest): Promise<MemoryRecord> {
    const record = await this.prepare(input);
    this.log.put(record);
    this.adopt(record);
    return publicRecord(record);
  }

  /** Many writes behind one disk sync: for imports and benches. */
  async addMany(inputs: readonly MemoryWriteRequest[]): Promise<MemoryRecord[]> {
    const records: StoredRecord[] = [];
    for (const input of inputs) records.push(await this.prepare(input));
    this.log.putMany(records);
    for (const record of records) this.adopt(record);
    return records.map(publicRecord);
  }

  /** One record by id (foreign ones included, they exist); reading it counts as an access. */
  get(id: string): MemoryRecord | undefined {
    const entry = this.entries.get(id);
    if (entry !== undefined) {
      this.touch(entry, this.now());
      return publicRecord(entry.record);
    }
    const foreign = this.foreign.get(id);
    return foreign === undefined ? undefined : publicRecord(foreign);
  }

  delete(id: string): boolean {
    const entry = this.entries.get(id);
    if (entry === undefined && !this.foreign.has(id)) return false;
    this.log.delete(id);
    this.foreign.delete(id);
    if (entry !== undefined) {
      entry.segment?.remove(entry);
      this.pinned.delete(entry);
      this.entries.delete(id);
    }
    this.pendingTouches.delete(id);
    return true;
  }

  /** The query's vector, from the LRU when the same text was asked recently. */
  async embedQuery(text: string): Promise<Float32Array> {
    const cached = this.queryCache.get(text);
    if (cached !== undefined) return cached;
    const vector = await this.embedder.embed(text);
    this.queryCache.set(text, vector);
    return vector;
  }

  /**
   * Text search. `touch` (local searches) marks the hits as accessed, which keeps them or brings
   * them back into the hot tier; peer searches are read-only and pass false.
   */
  async search(query: string, filters: SearchFilters, { touch }: { touch: boolean }): Promise<ScoredRecord[]> {
    const vector = await this.embedQuery(query);
    const hits = this.searchVector(vector, filters);
    const nowMs = this.now();
    if (touch) for (const hit of hits) this.touch(hit.entry, nowMs);
    return hits.map((hit) => ({ score: hit.score, record: publicRecord(hit.entry.record) }));
  }

  /**
   * The ranking rules, in order: project pre-filter (only that project's matrices are scanned),
   * cold tier skipped unless `includeCold`, min-confidence, best `limit` by cosine; then every
   * pinned record in scope is added whatever its score, confidence or age.
   */
  searchVector(
    query: Float32Array,
    filters: SearchFilters,
    { exact = false }: { exact?: boolean } = {},
  ): ScoredEntry[] {
    const nowMs = this.now();
    const scoped = this.scopedTiers(filters.project);
    const ranked: ScoredEntry[] = [];
    for (const tiers of scoped) {
      this.sweep(tiers, nowMs);
      ranked.push(...eligibleNearest(tiers.hot, query, filters, exact));
      if (filters.includeCold) ranked.push(...eligibleNearest(tiers.cold, query, filters, exact));
    }
    ranked.sort(byScore);
    if (ranked.length > filters.limit) ranked.length = filters.limit;
    const pinnedHits: ScoredEntry[] = [];
    for (const entry of this.pinned) {
      if (filters.project === undefined || entry.record.project === filters.project)
        pinnedHits.push({ entry, score: dot(query, entry.record.vector) });
    }
    pinnedHits.sort(byScore);
    if (pinnedHits.length > MemoryLimits.searchLimitMax) pinnedHits.length = MemoryLimits.searchLimitMax;
    return [...ranked, ...pinnedHits].sort(byScore);
  }

  counts(): StoreCounts {
    let hot = 0;
    let cold = 0;
    let annIndexed = 0;
    let annPending = 0;
    for (const tiers of this.tiers.values()) {
      hot += tiers.hot.size;
      cold += tiers.cold.size;
      annIndexed += tiers.hot.annIndexed + tiers.cold.annIndexed;
      annPending += tiers.hot.annPending + tiers.cold.annPending;
    }
    const foreign = new Map<string, number>();
    for (const record of this.foreign.values())
      foreign.set(record.embedderId, (foreign.get(record.embedderId) ?? 0) + 1);
    return {
      records: this.entries.size + this.foreign.size,
      hot,
      cold,
      pinned: this.pinned.size,
      foreign: [...foreign].map(([embedderId, records]) => ({ embedderId, records })),
      corrupt: this.corrupt,
      annIndexed,
      annPending,
    };
  }

  /** Per project tier that has an HNSW index: where it came from (loaded / built / building). */
  annStates(): AnnTierState[] {
    const states: AnnTierState[] = [];
    for (const [project, tiers] of this.tiers) {
      for (const tier of ["hot", "cold"] as const) {
        const state = tiers[tier].annState;
        if (state !== undefined) states.push({ project, tier, ...state });
      }
    }
    return states;
  }

  /**
   * Saved graphs of tiers that no longer get an index (their project emptied, or the tier shrank
   * below the threshold) would otherwise stay on disk forever; runs once, after replay, when
   * every tier that will have an index has one.
   */
  private removeOrphanAnnFiles(): void {
    if (this.annDir === undefined || !existsSync(this.annDir)) return;
    const live = new Set<string>();
    for (const [project, tiers] of this.tiers) {
      for (const tier of ["hot", "cold"] as const)
        if (tiers[tier].annState !== undefined) live.add(annFileName(project, tier));
    }
    for (const file of readdirSync(this.annDir)) {
      const name = file.replace(/\.(json|usearch)(\.tmp)?$/, "");
      if (!live.has(name)) rmSync(join(this.annDir, file), { force: true });
    }
  }

  /** Flushes pending access times, saves changed HNSW graphs and closes the log; the embedder belongs to the caller. */
  close(): void {
    if (this.closed) return;
    this.flushTouches();
    clearInterval(this.touchTimer);
    for (const tiers of this.tiers.values()) {
      tiers.hot.close();
      tiers.cold.close();
    }
    this.log.close();
    this.closed = true;
  }

  private async prepare(input: MemoryWriteRequest): Promise<StoredRecord> {
    const vector = input.embedding === undefined ? await this.embedder.embed(input.text) : this.callerVector(input);
    const at = new Date(this.now()).toISOString();
    return {
      id: randomUUID(),
      text: input.text,
      project: input.project,
      tags: [...input.tags],
      confidence: input.confidence,
      pinned: input.pinned,
      createdAt: at,
      accessedAt: at,
      embedderId: this.embedder.id,
      vector,
    };
  }

  /** A caller-supplied vector must come from this store's embedder and have its dimensions. */
  private callerVector(input: MemoryWriteRequest): Float32Array {
    if (input.embedderId !== undefined && input.embedderId !== this.embedder.id) {
      throw new PotluckHttpError(
        400,
        ErrorCode.invalidRequest,
        `embedderId: this store embeds with ${this.embedder.id}, not ${input.embedderId}; vectors from different embedders are never compared`,
        "embedderId",
      );
    }
    const values = input.embedding ?? [];
    if (values.length !== this.embedder.dimensions) {
      throw new PotluckHttpError(
        400,
        ErrorCode.invalidRequest,
        `embedding: expected ${this.embedder.dimensions} numbers (embedder ${this.embedder.id}), got ${values.length}`,
        "embedding",
      );
    }
    const vector = Float32Array.from(values);
    if (!normalizeInPlace(vector))
      throw new PotluckHttpError(400, ErrorCode.invalidRequest, "embedding: the vector is all zeros", "embedding");
    return vector;
  }

  /** Puts a replayed or new record where it belongs: searchable, foreign or corrupt. */
  private adopt(record: StoredRecord): void {
    if (record.embedderId !== this.embedder.id) {
      this.foreign.set(record.id, record);
      return;
    }
    if (record.vector.length !== this.embedder.dimensions) {
      this.corrupt.lines++;
      if (this.corrupt.samples.length < 10)
        this.corrupt.samples.push(
          `record ${record.id}: ${record.vector.length} dimensions, embedder ${record.embedderId} has ${this.embedder.dimensions}`,
        );
      return;
    }
    if (!normalizeInPlace(record.vector)) return;
    const previous = this.entries.get(record.id);
    if (previous !== undefined) {
      previous.segment?.remove(previous);
      this.pinned.delete(previous);
    }
    const entry: Entry = { record, segment: undefined, row: -1 };
    this.entries.set(record.id, entry);
    const tiers = this.tiersFor(record.project);
    const cold = !record.pinned && Date.parse(record.accessedAt) < this.now() - this.coldAfterMs;
    (cold ? tiers.cold : tiers.hot).add(entry);
    if (record.pinned) this.pinned.add(entry);
  }

  private touch(entry: Entry, nowMs: number): void {
    entry.record.accessedAt = new Date(nowMs).toISOString();
    const tiers = this.tiersFor(entry.record.project);
    if (entry.segment === tiers.cold) {
      tiers.cold.remove(entry);
      tiers.hot.add(entry);
    } else {
      entry.segment?.touched(entry);
    }
    this.pendingTouches.add(entry.record.id);
    if (this.pendingTouches.size >= StoreDefaults.touchPendingMax) this.flushTouches();
  }

  private flushTouches(): void {
    if (this.pendingTouches.size === 0 || this.closed) return;
    // Group by access time so one line carries many ids; times differ only between flushes.
    const byTime = new Map<string, string[]>();
    for (const id of this.pendingTouches) {
      const at = this.entries.get(id)?.record.accessedAt;
      if (at !== undefined) byTime.set(at, [...(byTime.get(at) ?? []), id]);
    }
    this.pendingTouches.clear();
    for (const [at, ids] of byTime) this.log.touch(at, ids);
  }

  private sweep(tiers: Tiers, nowMs: number): void {
    if (nowMs - tiers.lastSweepMs < this.sweepIntervalMs) return;
    tiers.lastSweepMs = nowMs;
    for (const entry of tiers.hot.staleEntries(nowMs - this.coldAfterMs)) {
      tiers.hot.remove(entry);
      tiers.cold.add(entry);
    }
  }

  private scopedTiers(project: string | undefined): Tiers[] {
    if (project === undefined) return [...this.tiers.values()];
    const tiers = this.tiers.get(project);
    return tiers === undefined ? [] : [tiers];
  }

  private tiersFor(project: string): Tiers {
    let tiers = this.tiers.get(project);
    if (tiers === undefined) {
      const dims = this.embedder.dimensions;
      const persist = (tier: "hot" | "cold") =>
        this.annDir === undefined
          ? undefined
          : { base: join(this.annDir, annFileName(project, tier)), embedderId: this.embedder.id };
      tiers = {
        hot: new VectorSegment(dims, this.annOptions, persist("hot")),
        cold: new VectorSegment(dims, this.annOptions, persist("cold")),
        lastSweepMs: this.now(),
      };
      this.tiers.set(project, tiers);
    }
    return tiers;
  }
}

/**
 * The best `limit` unpinned rows of one segment that pass min-confidence. The scan asks for as
 * many extra rows as the filter could drop, so filtering never leaves fewer than `limit`; an
 * approximate answer that comes back short is redone exactly.
 */
function eligibleNearest(
  segment: VectorSegment,
  query: Float32Array,
  filters: SearchFilters,
  exact: boolean,
): ScoredEntry[] {
  if (segment.size === 0) return [];
  const k = Math.min(segment.size, filters.limit + segment.excludedRows(filters.minConfidence));
  const keep = (hit: ScoredEntry) => !hit.entry.record.pinned && hit.entry.record.confidence >= filters.minConfidence;
  const hits = segment.nearest(query, k, { exact }).filter(keep);
  const eligible = segment.size - segment.excludedRows(filters.minConfidence);
  if (hits.length < Math.min(filters.limit, eligible) && !exact)
    return segment.nearest(query, k, { exact: true }).filter(keep);
  return hits.slice(0, filters.limit);
}

function byScore(a: ScoredEntry, b: ScoredEntry): number {
  return b.score - a.score;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] ?? 0) * (b[i] ?? 0);
  return sum;
}

function publicRecord(record: StoredRecord): MemoryRecord {
  return {
    id: record.id,
    text: record.text,
    project: record.project,
    tags: [...record.tags],
    confidence: record.confidence,
    pinned: record.pinned,
    createdAt: record.createdAt,
    accessedAt: record.accessedAt,
    embedderId: record.embedderId,
  };
}

/** Project names are free text; a hash makes a safe, fixed-length file name per project tier. */
function annFileName(project: string, tier: "hot" | "cold"): string {
  return `${createHash("sha256").update(project).digest("hex").slice(0, 24)}-${tier}`;
}
