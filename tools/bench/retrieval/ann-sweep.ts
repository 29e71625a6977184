// Tuning sweep for the memory store's HNSW index: recall@10 (after exact re-scoring, as the store
// does) and single-query latency for each connectivity × quantization × ef × candidate count, on
// the retrieval bench's corpus and queries. Graphs are built once per (M, quantization) and
// saved, so ef and candidate counts are measured on the same graph.
//
//   node --import tsx tools/bench/retrieval/ann-sweep.ts [--size 100000] [--m 16,24,32]
//        [--quant bf16,i8] [--ef 32,48,64,96] [--candidates 10,16] [--ef-add 0,256]
//        [--samples 400] [--cache DIR]
//
// --ef-add is the construction-time expansion (0 = usearch's default): a better graph costs only
// build time, so it can buy recall without slowing search.
//
// --cache keeps the built graphs in DIR and reuses them on the next run (same size and corpus).
//
// Prints a table; writes tools/bench/results/retrieval-ann-sweep.json. Not part of `npm test`.
import { benchFlags } from "../common/args.js";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import usearch, { type Matches } from "usearch";
import { lexicalVector } from "@potluck/sidecar/memory";
import { repoRoot } from "../../src/lib/repo.js";
import { questionFor, seededRandom, syntheticTexts } from "./corpus.js";
import { fmt, summarize } from "../common/stats.js";

const dims = 384;
const queriesCount = 200;
const quantKinds = {
  bf16: usearch.ScalarKind.BF16,
  f16: usearch.ScalarKind.F16,
  i8: usearch.ScalarKind.I8,
  f32: usearch.ScalarKind.F32,
} as const;
type Quant = keyof typeof quantKinds;

const { flags } = benchFlags(process.argv.slice(2), {
  strings: ["size", "m", "quant", "ef", "candidates", "ef-add", "samples", "cache"],
  positionals: false,
});
const list = (name: string, fallback: string) => (flags.get(name) ?? fallback).split(",");
const size = Number(flags.get("size") ?? "100000");
const ms = list("m", "16,24,32").map(Number);
const quants = list("quant", "bf16,i8") as Quant[];
const efs = list("ef", "32,48,64,96").map(Number);
const candidateCounts = list("candidates", "10,16").map(Number);
const efAdds = list("ef-add", "0").map(Number);
const samples = Number(flags.get("samples") ?? "400");
const cacheDir = flags.get("cache");
if (!(size >= 1_000 && size <= 1_000_000)) throw new Error("--size: 1000..1000000");
if (quants.some((q) => !(q in quantKinds))) throw new Error(`--quant: of ${Object.keys(quantKinds).join(",")}`);
if (efAdds.some((n) => !Number.isInteger(n) || n < 0 || n > 1_024)) throw new Error("--ef-add: integers 0..1024");
if ([...ms, ...efs, ...candidateCounts].some((n) => !Number.isInteger(n) || n < 2 || n > 1_024))
  throw new Error("--m/--ef/--candidates: integers 2..1024");
if (!(samples >= 10 && samples <= 10_000)) throw new Error("--samples: 10..10000");

const texts = syntheticTexts(size);
const matrix = new Float32Array(size * dims);
texts.forEach((text, i) => matrix.set(lexicalVector(text, dims), i * dims));
const random = seededRandom(23);
const queries = Array.from({ length: queriesCount }, () =>
  lexicalVector(questionFor(texts[Math.floor(random() * size)] ?? "", random), dims),
);
const truth = queries.map(
  (q) => new Set((usearch.exactSearch(matrix, q, dims, 10, usearch.MetricKind.IP, 0) as Matches).keys),
);

interface Row {
  m: number;
  efAdd: number;
  quant: Quant;
  ef: number;
  candidates: number;
  recallAt10: number;
  p50: number;
  p95: number;
  buildS: number;
  fileMb: number;
}

const dir = cacheDir ?? mkdtempSync(join(tmpdir(), "potluck-ann-sweep-"));
mkdirSync(dir, { recursive: true });
const rows: Row[] = [];
try {
  // Every variant is timed interleaved, query by query, so load from other processes on this
  // shared machine falls on all of them alike; graphs are memory-mapped (view), not copied.
  const variants: { row: Row; index: InstanceType<typeof usearch.Index>; times: number[] }[] = [];
  for (const quant of quants) {
    for (const [m, efAdd] of ms.flatMap((m) => efAdds.map((e) => [m, e] as const))) {
      const config = (ef: number) => ({
        dimensions: dims,
        metric: usearch.MetricKind.IP,
        quantization: quantKinds[quant],
        connectivity: m,
        expansion_add: efAdd,
        expansion_search: ef,
        multi: false,
      });
      const file = join(dir, `n${size}-m${m}-${quant}${efAdd === 0 ? "" : `-add${efAdd}`}.usearch`);
      let buildS = Number.NaN;
      if (!existsSync(file)) {
        const built = new usearch.Index(config(64));
        const started = performance.now();
        built.add(new BigUint64Array(Array.from({ length: size }, (_, i) => BigInt(i))), matrix, 0);
        buildS = (performance.now() - started) / 1000;
        built.save(file);
      }
      const fileMb = statSync(file).size / 1e6;
      process.stdout.write(
        `M ${m} ${quant} ef-add ${efAdd}: ${Number.isNaN(buildS) ? "graph from --cache" : `built in ${buildS.toFixed(1)} s`} (${fileMb.toFixed(0)} MB)\n`,
      );
      for (const ef of efs) {
        const index = new usearch.Index(config(ef));
        index.view(file);
        for (const candidates of candidateCounts) {
          let found = 0;
          for (const [i, q] of queries.entries()) {
            const hits = index.search(q, candidates, 1) as Matches;
            const rescored = [...hits.keys]
              .map((key) => ({ key, score: dot(matrix, Number(key), q) }))
              .sort((a, b) => b.score - a.score)
              .slice(0, 10);
            found += rescored.filter((h) => truth[i]?.has(h.key)).length;
          }
          variants.push({
            row: {
              m,
              efAdd,
              quant,
              ef,
              candidates,
              recallAt10: found / (queries.length * 10),
              p50: 0,
              p95: 0,
              buildS,
              fileMb,
            },
            index,
            times: [],
          });
        }
      }
    }
  }
  for (let i = 0; i < samples + 50; i++) {
    for (const [v, variant] of variants.entries()) {
      // A different query from the variant before: two variants on one graph must not share a
      // walk the first one just pulled into cache.
      const q = queries[(i + v * 37) % queries.length] as Float32Array;
      const t0 = performance.now();
      variant.index.search(q, variant.row.candidates, 1);
      if (i >= 50) variant.times.push(performance.now() - t0);
    }
  }
  for (const variant of variants) {
    const s = summarize(variant.times);
    const row = { ...variant.row, p50: s.p50, p95: s.p95 };
    rows.push(row);
    process.stdout.write(
      `M ${row.m} ${row.quant} ef-add ${row.efAdd} ef ${row.ef} cand ${row.candidates}: recall@10 ${row.recallAt10.toFixed(3)} p50 ${fmt(s.p50)} p95 ${fmt(s.p95)} ms\n`,
    );
  }
} finally {
  if (cacheDir === undefined) rmSync(dir, { recursive: true, force: true });
}
const resultsDir = join(repoRoot, "tools/bench/results");
mkdirSync(resultsDir, { recursive: true });
writeFileSync(
  join(resultsDir, "retrieval-ann-sweep.json"),
  JSON.stringify({ at: new Date().toISOString(), size, samples, rows }, null, 2),
);

function dot(data: Float32Array, row: number, q: Float32Array): number {
  let sum = 0;
  const offset = row * dims;
  for (let i = 0; i < dims; i++) sum += (data[offset + i] ?? 0) * (q[i] ?? 0);
  return sum;
}
