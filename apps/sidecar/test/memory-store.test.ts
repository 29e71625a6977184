import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PotluckHttpError } from "@potluck/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLexicalEmbedder, lexicalVector } from "../src/memory/lexical-embedder.js";
import { LruCache } from "../src/memory/query-cache.js";
import type { MemoryStore } from "../src/memory/store.js";
import { dayMs, defaults, manualClock, openStore, scratchDir } from "./memory-helpers.js";

const all = { minConfidence: 0, limit: 10, includeCold: false } as const;

describe("memory store rules", () => {
  let scratch: ReturnType<typeof scratchDir>;
  let store: MemoryStore | undefined;
  beforeEach(() => {
    scratch = scratchDir();
  });
  afterEach(() => {
    store?.close();
    store = undefined;
    scratch.cleanup();
  });

  it("project filter: only the asked project's memories come back", async () => {
    store = await openStore(scratch.dir);
    await store.add({ ...defaults, text: "deploy with the blue green script", project: "alpha" });
    await store.add({ ...defaults, text: "deploy with the blue green script", project: "beta" });
    const scoped = await store.search("how do we deploy", { ...all, project: "alpha" }, { touch: false });
    expect(scoped.map((h) => h.record.project)).toEqual(["alpha"]);
    const unscoped = await store.search("how do we deploy", all, { touch: false });
    expect(unscoped.map((h) => h.record.project).sort()).toEqual(["alpha", "beta"]);
  });

  it("min-confidence: memories below the floor are dropped, even the best match", async () => {
    store = await openStore(scratch.dir);
    await store.add({ ...defaults, text: "the staging database listens on port 5433", confidence: 0.3 });
    await store.add({ ...defaults, text: "staging runs on a database somewhere", confidence: 0.9 });
    const loose = await store.search("staging database port 5433", all, { touch: false });
    expect(loose[0]?.record.confidence).toBe(0.3);
    const strict = await store.search("staging database port 5433", { ...all, minConfidence: 0.5 }, { touch: false });
    expect(strict.map((h) => h.record.confidence)).toEqual([0.9]);
  });

  it("pinned: a pinned memory is always included, past limit, confidence and relevance", async () => {
    store = await openStore(scratch.dir);
    await store.add({ ...defaults, text: "always answer in British English", pinned: true, confidence: 0.1 });
    for (const text of [
      "kubernetes cluster upgrade notes",
      "kubernetes ingress certificate renewal",
      "kubernetes node pool sizing",
    ]) {
      await store.add({ ...defaults, text });
    }
    const hits = await store.search("kubernetes cluster", { ...all, limit: 1, minConfidence: 0.5 }, { touch: false });
    expect(hits).toHaveLength(2);
    expect(hits.map((h) => h.record.text)).toContain("always answer in British English");
    expect(hits.filter((h) => !h.record.pinned)[0]?.record.text).toBe("kubernetes cluster upgrade notes");
  });

  it("pinned memories stay inside the project filter", async () => {
    store = await openStore(scratch.dir);
    await store.add({ ...defaults, text: "pinned elsewhere", project: "other", pinned: true });
    await store.add({ ...defaults, text: "local note", project: "here" });
    const hits = await store.search("note", { ...all, project: "here" }, { touch: false });
    expect(hits.map((h) => h.record.project)).toEqual(["here"]);
  });

  it("recency: cold memories are skipped until asked for or re-accessed", async () => {
    const clock = manualClock();
    store = await openStore(scratch.dir, { now: clock.now, coldAfterMs: 30 * dayMs });
    const old = await store.add({ ...defaults, text: "the printer on the second floor needs the blue driver" });
    clock.advance(31 * dayMs);
    await store.add({ ...defaults, text: "the printer in the lobby is fine" });
    const hot = await store.search("printer driver", all, { touch: true });
    expect(hot.map((h) => h.record.id)).not.toContain(old.id);
    expect(store.counts()).toMatchObject({ hot: 1, cold: 1 });
    const withCold = await store.search("printer driver", { ...all, includeCold: true }, { touch: true });
    expect(withCold[0]?.record.id).toBe(old.id);
    // Returned by a local search = accessed: it is hot again.
    const again = await store.search("printer driver", all, { touch: false });
    expect(again.map((h) => h.record.id)).toContain(old.id);
    expect(store.counts()).toMatchObject({ hot: 2, cold: 0 });
  });

  it("recency: reading a cold memory by id re-accesses it", async () => {
    const clock = manualClock();
    store = await openStore(scratch.dir, { now: clock.now, coldAfterMs: dayMs });
    const old = await store.add({ ...defaults, text: "wifi password is in the drawer" });
    clock.advance(2 * dayMs);
    expect(await store.search("wifi password", all, { touch: false })).toEqual([]);
    expect(store.get(old.id)?.id).toBe(old.id);
    expect((await store.search("wifi password", all, { touch: false }))[0]?.record.id).toBe(old.id);
  });

  it("peer (read-only) searches do not re-access records", async () => {
    const clock = manualClock();
    store = await openStore(scratch.dir, { now: clock.now, coldAfterMs: dayMs });
    const old = await store.add({ ...defaults, text: "garage code is 4411" });
    clock.advance(2 * dayMs);
    expect((await store.search("garage code", { ...all, includeCold: true }, { touch: false }))[0]?.record.id).toBe(
      old.id,
    );
    expect(await store.search("garage code", all, { touch: false })).toEqual([]);
  });

  it("a caller vector of the wrong size or from another embedder is a 400 naming the field", async () => {
    store = await openStore(scratch.dir);
    const wrongSize = store.add({ ...defaults, text: "x", embedding: [1, 2, 3] });
    await expect(wrongSize).rejects.toBeInstanceOf(PotluckHttpError);
    await expect(wrongSize).rejects.toMatchObject({ status: 400, field: "embedding" });
    await expect(
      store.add({ ...defaults, text: "x", embedding: new Array<number>(384).fill(0) }),
    ).rejects.toMatchObject({ field: "embedding" });
    await expect(
      store.add({ ...defaults, text: "x", embedding: new Array<number>(384).fill(1), embedderId: "gguf:other" }),
    ).rejects.toMatchObject({ field: "embedderId" });
    const ok = await store.add({
      ...defaults,
      text: "caller vector",
      embedding: Array.from(lexicalVector("caller vector", 384)),
    });
    expect((await store.search("caller vector", all, { touch: false }))[0]?.record.id).toBe(ok.id);
  });

  it("caches query embeddings, bounded", async () => {
    store = await openStore(scratch.dir, { queryCacheEntriesMax: 2 });
    await store.search("one", all, { touch: false });
    await store.search("one", all, { touch: false });
    expect(store.cacheStats).toMatchObject({ hits: 1, misses: 1 });
    await store.search("two", all, { touch: false });
    await store.search("three", all, { touch: false });
    expect(store.cacheStats.size).toBe(2);
    await store.search("one", all, { touch: false });
    expect(store.cacheStats.misses).toBe(4);
  });
});

describe("memory store on disk", () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeEach(() => {
    scratch = scratchDir();
  });
  afterEach(() => scratch.cleanup());

  it("survives a restart: records, deletes and access times", async () => {
    const clock = manualClock();
    const first = await openStore(scratch.dir, { now: clock.now });
    const keep = await first.add({
      ...defaults,
      text: "the boiler is serviced every October",
      tags: ["house"],
      pinned: true,
      confidence: 0.8,
    });
    const gone = await first.add({ ...defaults, text: "temporary note" });
    expect(first.delete(gone.id)).toBe(true);
    clock.advance(1000);
    first.get(keep.id);
    first.close();

    const second = await openStore(scratch.dir, { now: clock.now });
    try {
      expect(second.get(gone.id)).toBeUndefined();
      const back = second.get(keep.id);
      expect(back).toMatchObject({
        text: keep.text,
        tags: ["house"],
        pinned: true,
        confidence: 0.8,
        createdAt: keep.createdAt,
      });
      expect(Date.parse(back?.accessedAt ?? "")).toBe(clock.now());
      expect((await second.search("boiler service", all, { touch: false }))[0]?.record.id).toBe(keep.id);
      expect(second.counts()).toMatchObject({ records: 1, corrupt: { lines: 0 } });
    } finally {
      second.close();
    }
  });

  it("reports corrupt lines and keeps the good records", async () => {
    const first = await openStore(scratch.dir);
    const good = await first.add({ ...defaults, text: "good record" });
    await first.add({ ...defaults, text: "record that will be damaged" });
    first.close();
    const path = join(scratch.dir, "memory.log");
    const lines = readFileSync(path, "utf8").split("\n");
    lines[1] = (lines[1] ?? "").replace("damaged", "DAMAGED");
    writeFileSync(path, lines.join("\n"));
    appendFileSync(path, '0badc0de {"t":"put","r":{"id":"torn"');

    const second = await openStore(scratch.dir);
    try {
      const counts = second.counts();
      expect(counts.records).toBe(1);
      expect(counts.corrupt.lines).toBe(2);
      expect(counts.corrupt.samples.join("\n")).toMatch(/line 2: checksum mismatch/);
      expect(second.get(good.id)?.text).toBe("good record");
      // Appending after a torn last line starts a fresh line, so the new record survives another restart.
      await second.add({ ...defaults, text: "written after the tear" });
    } finally {
      second.close();
    }
    const third = await openStore(scratch.dir);
    try {
      expect(third.counts()).toMatchObject({ records: 2, corrupt: { lines: 2 } });
    } finally {
      third.close();
    }
  });

  it("keeps records from another embedder but never searches them", async () => {
    const first = await openStore(scratch.dir, { embedder: createLexicalEmbedder({ dimensions: 128 }) });
    const foreign = await first.add({ ...defaults, text: "embedded by the old model" });
    first.close();
    const second = await openStore(scratch.dir);
    try {
      expect(second.counts()).toMatchObject({ records: 1, foreign: [{ embedderId: "lexical-v1:128", records: 1 }] });
      expect(await second.search("embedded by the old model", { ...all, includeCold: true }, { touch: false })).toEqual(
        [],
      );
      expect(second.get(foreign.id)?.embedderId).toBe("lexical-v1:128");
    } finally {
      second.close();
    }
  });

  it("compacts a mostly-dead log without losing live records", async () => {
    const store = await openStore(scratch.dir);
    const ids: string[] = [];
    const created = await store.addMany(
      Array.from({ length: 1_500 }, (_, i) => ({ ...defaults, text: `note number ${i}` })),
    );
    for (const record of created.slice(0, 1_400)) store.delete(record.id);
    for (const record of created.slice(1_400)) ids.push(record.id);
    store.close();
    const before = readFileSync(join(scratch.dir, "memory.log"), "utf8").split("\n").length;
    const reopened = await openStore(scratch.dir);
    try {
      const after = readFileSync(join(scratch.dir, "memory.log"), "utf8").split("\n").length;
      expect(after).toBeLessThan(before);
      expect(reopened.counts().records).toBe(100);
      for (const id of ids) expect(reopened.get(id)).toBeDefined();
    } finally {
      reopened.close();
    }
  });
});

describe("ANN past the threshold", () => {
  it("builds an HNSW index in the background and agrees with the exact scan", async () => {
    const scratch = scratchDir();
    const store = await openStore(scratch.dir, { ann: { thresholdRows: 1_000, buildBatchRows: 256 } });
    try {
      const words =
        "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango".split(
          " ",
        );
      const texts = Array.from(
        { length: 3_000 },
        (_, i) => `${words[i % 20]} ${words[(i * 7) % 20]} ${words[(i * 13) % 19]} item ${i}`,
      );
      await store.addMany(texts.map((text) => ({ ...defaults, text })));
      await expect.poll(() => store.counts().annIndexed, { timeout: 60_000, interval: 100 }).toBe(3_000);
      let agreed = 0;
      const queries = texts.slice(0, 50);
      for (const query of queries) {
        const vector = await store.embedQuery(query);
        const exact = store.searchVector(vector, all, { exact: true }).map((h) => h.entry.record.id);
        const approx = store.searchVector(vector, all).map((h) => h.entry.record.id);
        agreed += approx.filter((id) => exact.includes(id)).length;
      }
      expect(agreed / (queries.length * 10)).toBeGreaterThan(0.9);
    } finally {
      store.close();
      scratch.cleanup();
    }
  });
});

describe("lexical embedder and LRU", () => {
  it("gives unit vectors that rank a paraphrase above an unrelated text", () => {
    const q = lexicalVector("Which port does the staging database use?", 384);
    const a = lexicalVector("The staging database listens on port 5433.", 384);
    const b = lexicalVector("My sister's birthday is in March.", 384);
    const norm = Math.sqrt(q.reduce((s, x) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 5);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * (y[i] ?? 0), 0);
    expect(dot(q, a)).toBeGreaterThan(dot(q, b) + 0.2);
    expect(lexicalVector("same text", 384)).toEqual(lexicalVector("same text", 384));
  });

  it("evicts the least recently used entry", () => {
    const cache = new LruCache<number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.get("a");
    cache.set("c", 3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.size).toBe(2);
  });
});
