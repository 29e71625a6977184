import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MemoryStore } from "../src/memory/store.js";
import { MemoryStatus } from "@potluck/protocol";
import { memoryStatus } from "../src/memory/routes.js";
import { defaults, openStore, scratchDir } from "./memory-helpers.js";

// The saved HNSW graph: a restart loads it instead of rebuilding, and a graph that no longer
// describes the records (stale) or is damaged (corrupt) is rebuilt, never used.
const ann = { thresholdRows: 300, buildBatchRows: 128 };
const all = { minConfidence: 0, limit: 10, includeCold: false };
const words =
  "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango".split(
    " ",
  );
const textOf = (i: number) => `${words[i % 20]} ${words[(i * 7) % 20]} ${words[(i * 13) % 19]} item ${i}`;
const texts = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ ...defaults, text: textOf(from + i) }));

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function open(dir: string): Promise<MemoryStore> {
  const store = await openStore(dir, { ann });
  cleanups.push(() => store.close());
  // Settled: loaded, or built to the last row.
  await expect.poll(() => store.annStates()[0]?.source, { timeout: 60_000, interval: 20 }).not.toBe("building");
  await expect.poll(() => store.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
  return store;
}

/**
 * Share of stored texts that the index (not the exact scan) finds as their own best match: a
 * graph mapped to the wrong records, or not searched at all, fails this.
 */
async function selfFound(store: MemoryStore, indices: number[]): Promise<number> {
  let found = 0;
  for (const i of indices) {
    const vector = await store.embedQuery(textOf(i));
    if (store.searchVector(vector, all)[0]?.entry.record.text === textOf(i)) found++;
  }
  return found / indices.length;
}

function annFiles(dir: string): string[] {
  return existsSync(join(dir, "ann")) ? readdirSync(join(dir, "ann")).sort() : [];
}

describe("HNSW index on disk", () => {
  it("is saved once built and loaded, not rebuilt, at the next start", async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const first = await open(scratch.dir);
    await first.addMany(texts(0, 600));
    await expect.poll(() => first.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
    expect(first.annStates()).toMatchObject([{ project: "default", tier: "hot", source: "built", indexed: 600 }]);
    first.close();
    expect(annFiles(scratch.dir)).toEqual([
      expect.stringMatching(/-hot\.json$/),
      expect.stringMatching(/-hot\.usearch$/),
    ]);

    const second = await open(scratch.dir);
    expect(second.annStates()).toEqual([
      {
        project: "default",
        tier: "hot",
        source: "loaded",
        indexed: 600,
        rebuildReason: undefined,
        saveError: undefined,
      },
    ]);
    expect(await selfFound(second, [0, 50, 100, 150, 599])).toBe(1);
    // GET /memory/status says where the index came from.
    const status = MemoryStatus.parse(memoryStatus({ store: second, machine: "mac", peerSearchEnabled: () => false }));
    expect(status.ann).toEqual([{ project: "default", tier: "hot", source: "loaded", indexed: 600 }]);

    // Changes after loading are saved at close: a delete is gone from the next start's graph too.
    const gone = (await second.search(textOf(42), { ...all, project: "default" }, { touch: false }))[0]?.record;
    expect(gone?.text).toBe(textOf(42));
    second.delete(gone?.id ?? "");
    await second.addMany(texts(600, 5));
    second.close();
    const third = await open(scratch.dir);
    expect(third.annStates()[0]).toMatchObject({ source: "loaded", indexed: 604 });
    const vector = await third.embedQuery(textOf(42));
    expect(third.searchVector(vector, all).map((h) => h.entry.record.id)).not.toContain(gone?.id);
  });

  it("is rebuilt when it describes another set of records (stale)", async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const first = await open(scratch.dir);
    await first.addMany(texts(0, 600));
    await expect.poll(() => first.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
    first.close();
    const saved = join(scratch.dir, "saved-ann");
    cpSync(join(scratch.dir, "ann"), saved, { recursive: true });

    // Records written after the graph was saved, and a crash that left the old graph behind.
    const second = await open(scratch.dir);
    await second.addMany(texts(600, 20));
    second.close();
    cpSync(saved, join(scratch.dir, "ann"), { recursive: true });

    const third = await open(scratch.dir);
    expect(third.annStates()[0]).toMatchObject({
      source: "built",
      indexed: 620,
      rebuildReason: "saved index holds 600 records, this tier has 620",
    });
    expect(await selfFound(third, [3, 610, 619])).toBe(1);
    third.close();
    const fourth = await open(scratch.dir);
    expect(fourth.annStates()[0]).toMatchObject({ source: "loaded", indexed: 620 });
  });

  it("is rebuilt when the graph file is damaged or its description is not readable (corrupt)", async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const first = await open(scratch.dir);
    await first.addMany(texts(0, 400));
    await expect.poll(() => first.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
    first.close();
    const [meta, graph] = annFiles(scratch.dir).map((name) => join(scratch.dir, "ann", name)) as [string, string];

    const bytes = readFileSync(graph);
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0xff;
    writeFileSync(graph, bytes);
    const second = await open(scratch.dir);
    expect(second.annStates()[0]).toMatchObject({
      source: "built",
      indexed: 400,
      rebuildReason: "index file checksum mismatch (corrupt)",
    });
    second.close();

    writeFileSync(meta, readFileSync(meta, "utf8").slice(0, 100));
    const third = await open(scratch.dir);
    expect(third.annStates()[0]).toMatchObject({
      source: "built",
      indexed: 400,
      rebuildReason: "index description is not JSON",
    });
    expect(await selfFound(third, [1, 200, 399])).toBe(1);
  });

  it("is rebuilt when it was built with other index parameters", async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const first = await open(scratch.dir);
    await first.addMany(texts(0, 400));
    await expect.poll(() => first.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
    first.close();
    const other = await openStore(scratch.dir, { ann: { ...ann, connectivity: 8 } });
    cleanups.push(() => other.close());
    await expect.poll(() => other.annStates()[0]?.source, { timeout: 60_000, interval: 20 }).toBe("built");
    expect(other.annStates()[0]?.rebuildReason).toMatch(/^index built with connectivity \d+, store uses 8$/);
  });

  it("is removed at the next start once its tier no longer gets an index", async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const first = await open(scratch.dir);
    const records = await first.addMany(texts(0, 400));
    await expect.poll(() => first.counts().annPending, { timeout: 60_000, interval: 20 }).toBe(0);
    first.close();
    expect(annFiles(scratch.dir)).toHaveLength(2);

    // Below the threshold the tier is scanned exactly; its saved graph describes nothing any more.
    const second = await openStore(scratch.dir, { ann });
    cleanups.push(() => second.close());
    for (const record of records.slice(0, 150)) second.delete(record.id);
    second.close();
    const third = await openStore(scratch.dir, { ann });
    cleanups.push(() => third.close());
    expect(third.annStates()).toEqual([]);
    expect(annFiles(scratch.dir)).toEqual([]);
  });
});
