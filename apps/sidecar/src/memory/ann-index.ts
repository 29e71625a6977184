import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import usearch, { type Index, type Matches } from "usearch";
import { readAnnFile, writeAnnFile } from "./ann-file.js";
import type { Entry, EntrySegment, ScoredEntry } from "./entry.js";

export interface AnnOptions {
  /** Rows at which this segment starts building an HNSW index; below it search is exact. */
  thresholdRows: number;
  /** Vectors added to the index per event-loop turn while it is being built. */
  buildBatchRows: number;
  connectivity: number;
  expansionSearch: number;
  /** How the graph stores vectors; only the candidate set depends on it (scores are exact f32). */
  quantization: AnnQuantization;
  /** At least this many candidates are taken from the graph and re-scored exactly; the best `k` are kept. */
  candidatesMin: number;
}

export type AnnQuantization = "bf16" | "i8";

/** Where a segment's index is saved, and the vector space it belongs to. */
export interface AnnPersistence {
  /** Path without extension; `.usearch` and `.json` are added. */
  base: string;
  embedderId: string;
}

/** How the index came to be: still building, built in this process, or loaded from disk. */
export type AnnSource = "building" | "built" | "loaded";

export interface AnnState {
  source: AnnSource;
  indexed: number;
  /** Why a saved index was not used (absent, stale, corrupt), when one was looked for. */
  rebuildReason: string | undefined;
  /** Why saving failed last, if it did; search is unaffected, the next start rebuilds. */
  saveError: string | undefined;
}

const scalarKinds = { bf16: usearch.ScalarKind.BF16, i8: usearch.ScalarKind.I8 } as const;

/**
 * HNSW over one segment. At start it loads the saved graph when that was built from exactly this
 * segment's records with the same embedder and parameters; otherwise it builds one a batch per
 * event-loop turn, so a large store never blocks the sidecar for the minute a full build takes,
 * and search stays exact until it has caught up. Keys are positions in `slots`, never reused,
 * so the saved id list maps a loaded graph back to records.
 */
export class AnnIndex {
  private index: Index;
  private slots: (Entry | undefined)[] = [];
  private slotOf = new Map<Entry, number>();
  private pending: Entry[];
  private closed = false;
  /** Changed since it was last saved (or loaded). */
  private dirty = false;
  ready = false;
  private state: AnnState = { source: "building", indexed: 0, rebuildReason: undefined, saveError: undefined };

  constructor(
    private readonly segment: EntrySegment,
    private readonly options: AnnOptions,
    private readonly persist: AnnPersistence | undefined,
  ) {
    this.index = this.emptyIndex();
    this.pending = [...segment.rows()];
    // The store adds every replayed record synchronously before this runs, so the segment is
    // complete when the saved graph is compared with it.
    setImmediate(() => this.start());
  }

  get indexed(): number {
    return this.slotOf.size;
  }

  get status(): AnnState {
    return { ...this.state, indexed: this.indexed };
  }

  add(entry: Entry): void {
    if (this.ready) this.insert([entry]);
    else this.pending.push(entry);
  }

  remove(entry: Entry): void {
    const slot = this.slotOf.get(entry);
    if (slot !== undefined) {
      this.slotOf.delete(entry);
      this.slots[slot] = undefined;
      this.index.remove(BigInt(slot));
      this.dirty = true;
    } else {
      this.pending = this.pending.filter((e) => e !== entry);
    }
  }

  /** Up to `k` candidates, scored by the index (bf16); the caller re-scores them exactly. */
  search(query: Float32Array, k: number): ScoredEntry[] {
    const found = this.index.search(query, k, 1) as Matches;
    const hits: ScoredEntry[] = [];
    const { keys, distances } = found;
    for (let i = 0; i < keys.length; i++) {
      // Missing results are padded with the all-ones key, which is no slot.
      const entry = this.slots[Number(keys[i])];
      if (entry !== undefined) hits.push({ entry, score: 1 - (distances[i] ?? 1) });
    }
    return hits;
  }

  /** Saves a changed, complete graph (so the next start loads it) and stops any build. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ready && this.dirty) this.save();
  }

  private emptyIndex(): Index {
    return new usearch.Index({
      dimensions: this.segment.dimensions,
      metric: usearch.MetricKind.IP,
      quantization: scalarKinds[this.options.quantization],
      connectivity: this.options.connectivity,
      expansion_add: 0,
      expansion_search: this.options.expansionSearch,
      multi: false,
    });
  }

  private start(): void {
    if (this.closed) return;
    if (this.persist !== undefined) {
      const reason = this.load(this.persist);
      if (reason === undefined) return;
      this.state.rebuildReason = reason;
    }
    this.buildStep();
  }

  /** Adopts the saved graph if it describes exactly this segment's records; else says why not. */
  private load(persist: AnnPersistence): string | undefined {
    const file = readAnnFile(persist.base, {
      embedderId: persist.embedderId,
      dimensions: this.segment.dimensions,
      connectivity: this.options.connectivity,
      quantization: this.options.quantization,
    });
    if ("reason" in file) return file.reason;
    const rows = this.segment.rows();
    const live = file.meta.ids.reduce((n, id) => (id === null ? n : n + 1), 0);
    if (live !== rows.length) return `saved index holds ${live} records, this tier has ${rows.length}`;
    const byId = new Map<string, Entry>();
    for (const entry of rows) byId.set(entry.record.id, entry);
    const slots: (Entry | undefined)[] = new Array<Entry | undefined>(file.meta.ids.length);
    const slotOf = new Map<Entry, number>();
    for (const [slot, id] of file.meta.ids.entries()) {
      if (id === null) continue;
      const entry = byId.get(id);
      if (entry === undefined) return `saved index names record ${id}, which this tier does not hold`;
      if (slotOf.has(entry)) return `saved index names record ${id} twice`;
      slots[slot] = entry;
      slotOf.set(entry, slot);
    }
    const loaded = this.emptyIndex();
    try {
      loaded.load(file.indexPath);
    } catch (error) {
      return `usearch could not load the saved index: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (loaded.size() !== live) return `saved graph has ${loaded.size()} vectors, its description ${live}`;
    this.index = loaded;
    this.slots = slots;
    this.slotOf = slotOf;
    this.pending = [];
    this.ready = true;
    this.state.source = "loaded";
    return undefined;
  }

  private buildStep(): void {
    if (this.closed) return;
    const batch = this.pending.splice(0, this.options.buildBatchRows);
    this.insert(batch);
    if (this.pending.length > 0) {
      setImmediate(() => this.buildStep());
      return;
    }
    this.ready = true;
    this.state.source = "built";
    this.save();
  }

  private insert(entries: readonly Entry[]): void {
    const live = entries.filter((e) => e.segment === this.segment && !this.slotOf.has(e));
    if (live.length === 0) return;
    const dims = this.segment.dimensions;
    const keys = new BigUint64Array(live.length);
    const vectors = new Float32Array(live.length * dims);
    live.forEach((e, i) => {
      const slot = this.slots.length;
      this.slots.push(e);
      this.slotOf.set(e, slot);
      keys[i] = BigInt(slot);
      vectors.set(e.record.vector, i * dims);
    });
    this.index.add(keys, vectors, 0);
    this.dirty = true;
  }

  private save(): void {
    if (this.persist === undefined || !this.dirty) return;
    const persist = this.persist;
    try {
      mkdirSync(dirname(persist.base), { recursive: true, mode: 0o700 });
      writeAnnFile(persist.base, (path) => this.index.save(path), {
        embedderId: persist.embedderId,
        dimensions: this.segment.dimensions,
        connectivity: this.options.connectivity,
        quantization: this.options.quantization,
        ids: this.slots.map((e) => (e === undefined ? null : e.record.id)),
      });
      this.dirty = false;
      this.state.saveError = undefined;
    } catch (error) {
      this.state.saveError = error instanceof Error ? error.message : String(error);
    }
  }
}
