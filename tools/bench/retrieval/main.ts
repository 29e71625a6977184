// Bench: memory retrieval — correctness (recall@1/3/10 on ten distinct memories, local and over
// the signed peer path) and latency at store sizes 10 … 100,000 for the in-process exact scan,
// /memory/search over loopback HTTP with a cached query embedding, and /peer/memory/search
// (signed) over loopback and, when the lab can run (root, netns), on a real sidecar in the lab:
// locally from a client on its own loopback and as a peer from another host across the WireGuard
// mesh (the goal's "peer path over local" is those two, same sidecar, alternated); plus ANN
// (HNSW) vs exact recall@10 and latency at the largest size.
//
//   node --import tsx tools/bench/retrieval/main.ts [--sizes 10,100,1000,5000,10000,100000]
//        [--samples 200] [--repeats 3] [--no-lab] [--tag NAME]
//
// Prints a table and writes tools/bench/results/retrieval.json. Not part of `npm test`.
import { benchFlags } from "../common/args.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemorySearchResponse } from "@potluck/protocol";
import { createLexicalEmbedder, MemoryStore } from "@potluck/sidecar/memory";
import { repoRoot } from "../../src/lib/repo.js";
import { distinctMemories, questionFor, seededRandom, syntheticTexts } from "./corpus.js";
import { labPeerPath, serverWarmupRequests, type Breakdown, type LabPeer, type LabTiming } from "./lab-peer.js";
import { peerSearch, postJson, serveMemory } from "./server.js";
import { fmt, medianOf, timeCalls, type Summary } from "../common/stats.js";

const resultsDir = join(repoRoot, "tools/bench/results");
const sizesDefault = [10, 100, 1_000, 5_000, 10_000, 100_000];
/** Bounds so a typo cannot ask for a billion rows or hours of samples. */
const sizeMax = 1_000_000;
const samplesMax = 10_000;
const repeatsMax = 20;
const annRecallQueries = 200;

interface Args {
  sizes: number[];
  samples: number;
  repeats: number;
  lab: boolean;
  /** Results go to retrieval[-TAG].json, so a second run over other sizes does not overwrite the first. */
  tag: string;
}

function parseArgs(argv: string[]): Args {
  const { flags } = benchFlags(argv, {
    strings: ["sizes", "samples", "repeats", "tag"],
    booleans: ["no-lab"],
    positionals: false,
  });
  const args: Args = {
    sizes: flags.has("sizes") ? (flags.get("sizes") ?? "").split(",").map(Number) : sizesDefault,
    samples: Number(flags.get("samples") ?? 200),
    repeats: Number(flags.get("repeats") ?? 3),
    lab: !flags.has("no-lab"),
    tag: (flags.get("tag") ?? "").replace(/[^a-z0-9-]/gi, ""),
  };
  if (args.sizes.some((n) => !Number.isInteger(n) || n < 10 || n > sizeMax))
    throw new Error(`--sizes: each 10..${sizeMax}`);
  if (!(args.samples >= 10 && args.samples <= samplesMax)) throw new Error(`--samples: 10..${samplesMax}`);
  if (!(args.repeats >= 1 && args.repeats <= repeatsMax)) throw new Error(`--repeats: 1..${repeatsMax}`);
  args.sizes.sort((a, b) => a - b);
  return args;
}

interface Recall {
  path: string;
  at1: number;
  at3: number;
  at10: number;
}

interface SizeRow {
  size: number;
  scan: Summary;
  http: Summary;
  peerLoopback: Summary;
  /** The lab sidecar: local search from its own loopback, and the signed peer search across the mesh. */
  lab?: LabTiming;
  /** At the breakdown size only: the peer path taken apart, with the mesh's own floor. */
  breakdown?: Breakdown;
}

/** The size at which the lab peer path is taken apart (the issue's peer comparison is at 10,000). */
const breakdownSize = 10_000;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), "potluck-bench-retrieval-"));
  const embedder = createLexicalEmbedder();
  const store = await MemoryStore.open({ dir, embedder });
  const server = await serveMemory(store, "bench-local");
  let lab: LabPeer | undefined;
  try {
    const ids = (
      await store.addMany(
        distinctMemories.map((m) => ({
          text: m.text,
          project: "recall",
          tags: ["bench"],
          confidence: 1,
          pinned: false,
        })),
      )
    ).map((r) => r.id);
    const recall: Recall[] = [
      await recallOf("local (in-process)", ids, async (q) =>
        (await store.search(q, filters("recall"), { touch: false })).map((h) => h.record.id),
      ),
    ];
    recall.push(
      await recallOf("local HTTP /memory/search", ids, async (q) =>
        parsed(await postJson(server.url, "/memory/search", { query: q, project: "recall" })),
      ),
    );
    recall.push(
      await recallOf("peer /peer/memory/search (loopback, signed)", ids, async (q) =>
        parsed(await peerSearch(server.url, server.sign, { query: q, project: "recall" })),
      ),
    );
    if (args.lab)
      lab = await labPeerPath().catch((error: unknown) => {
        process.stdout.write(`lab peer path skipped: ${error instanceof Error ? error.message : String(error)}\n`);
        return undefined;
      });
    if (lab !== undefined) {
      await lab.load(
        distinctMemories.map((m) => m.text),
        "recall",
      );
      const answers = await lab.searchMany(distinctMemories.map((m) => ({ query: m.question, project: "recall" })));
      let asked = 0;
      recall.push(
        await recallOf(
          `peer across the lab mesh (${lab.description})`,
          undefined,
          async () => Promise.resolve(answers[asked++] ?? []),
          distinctMemories.map((m) => m.text),
        ),
      );
    }
    const rows = await latencyRows(store, server, lab, args);
    const ann = await annVsExact(store, args);
    const restart = ann === undefined ? undefined : await timeRestart(store, dir);
    report(args, recall, rows, ann, restart, store);
  } finally {
    await lab?.close();
    await server.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function filters(project?: string) {
  return { project, minConfidence: 0, limit: 10, includeCold: false };
}

function parsed(payload: unknown): string[] {
  return MemorySearchResponse.parse(payload).hits.map((h) => h.record.id);
}

/** Recall@k of the ten distinct questions, matching by id (or by text where ids differ per machine). */
async function recallOf(
  path: string,
  ids: string[] | undefined,
  search: (q: string) => Promise<string[]>,
  texts?: string[],
): Promise<Recall> {
  const ranks: number[] = [];
  for (const [i, memory] of distinctMemories.entries()) {
    const found = await search(memory.question);
    const target = ids?.[i] ?? texts?.[i];
    ranks.push(found.indexOf(target ?? ""));
  }
  const at = (k: number) => ranks.filter((r) => r >= 0 && r < k).length / ranks.length;
  return { path, at1: at(1), at3: at(3), at10: at(10) };
}

/** Grows one store through the sizes; at each, times the three (or four) paths on the same queries. */
async function latencyRows(
  store: MemoryStore,
  server: Awaited<ReturnType<typeof serveMemory>>,
  lab: LabPeer | undefined,
  args: Args,
): Promise<SizeRow[]> {
  const largest = args.sizes.at(-1) ?? 0;
  const texts = syntheticTexts(largest);
  const random = seededRandom(11);
  const rows: SizeRow[] = [];
  let loaded = 0;
  let warmedUp = false;
  for (const size of args.sizes) {
    for (let from = loaded; from < size; from += 5_000) {
      const batch = texts
        .slice(from, Math.min(size, from + 5_000))
        .map((text) => ({ text, project: "scale", tags: [], confidence: 1, pinned: false }));
      await store.addMany(batch);
    }
    loaded = size;
    if (lab !== undefined) await lab.load(texts.slice(0, size), "scale");
    await waitForAnn(store);
    // One query text per cell: "cached query embedding" means the LRU answers, as in a session.
    const query = questionFor(texts[Math.floor(random() * size)] ?? "", random);
    const vector = await store.embedQuery(query);
    const body = { query, project: "scale" };
    const cell = async (fn: () => unknown) => {
      const repeats: Summary[] = [];
      for (let r = 0; r < args.repeats; r++) repeats.push(await timeCalls(fn, { samples: args.samples, warmup: 20 }));
      return medianOf(repeats);
    };
    if (!warmedUp) {
      // The same untimed warm-up the lab sidecar gets after each start (lab-peer.ts), so the first
      // size's in-process cells do not time the interpreter either.
      await timeCalls(() => postJson(server.url, "/memory/search", body), { samples: 1, warmup: serverWarmupRequests });
      await timeCalls(() => peerSearch(server.url, server.sign, body), { samples: 1, warmup: serverWarmupRequests });
      warmedUp = true;
    }
    const row: SizeRow = {
      size,
      scan: await cell(() => store.searchVector(vector, filters("scale"), { exact: true })),
      http: await cell(() => postJson(server.url, "/memory/search", body)),
      peerLoopback: await cell(() => peerSearch(server.url, server.sign, body)),
    };
    if (lab !== undefined) row.lab = await lab.time(body, args);
    const nearest = args.sizes.reduce((best, n) =>
      Math.abs(n - breakdownSize) < Math.abs(best - breakdownSize) ? n : best,
    );
    if (lab !== undefined && row.lab !== undefined && size === nearest) {
      const answerBytes = Buffer.byteLength(JSON.stringify(await postJson(server.url, "/memory/search", body)));
      row.breakdown = await lab.breakdown(body, args, answerBytes, row.lab.peerCpuMs);
    }
    rows.push(row);
    process.stdout.write(
      `size ${size}: scan p50 ${fmt(row.scan.p50)} ms, http p50 ${fmt(row.http.p50)} ms, peer p50 ${fmt(row.peerLoopback.p50)} ms${row.lab ? `, lab local p50 ${fmt(row.lab.local.p50)} ms, lab peer p50 ${fmt(row.lab.peer.p50)} ms` : ""}\n`,
    );
  }
  return rows;
}

async function waitForAnn(store: MemoryStore): Promise<void> {
  const started = Date.now();
  const deadline = started + 60 * 60_000;
  let reported = started;
  while (store.counts().annPending > 0) {
    if (Date.now() > deadline) throw new Error("ANN index did not finish building within 60 minutes");
    if (Date.now() - reported > 30_000) {
      reported = Date.now();
      process.stdout.write(
        `  building HNSW: ${store.counts().annPending} rows to go (${((reported - started) / 1000).toFixed(0)} s)\n`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (Date.now() - started > 1_000)
    process.stdout.write(`  HNSW built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

interface AnnResult {
  size: number;
  recallAt10: number;
  exact: Summary;
  ann: Summary;
}

/** At the largest size: HNSW answers vs the exact scan on the same queries. */
async function annVsExact(store: MemoryStore, args: Args): Promise<AnnResult | undefined> {
  const size = args.sizes.at(-1) ?? 0;
  if (size < store.annThresholdRows) return undefined;
  await waitForAnn(store);
  const texts = syntheticTexts(size);
  const random = seededRandom(23);
  const vectors: Float32Array[] = [];
  for (let i = 0; i < annRecallQueries; i++)
    vectors.push(await store.embedQuery(questionFor(texts[Math.floor(random() * size)] ?? "", random)));
  let overlap = 0;
  for (const vector of vectors) {
    const exact = new Set(store.searchVector(vector, filters("scale"), { exact: true }).map((h) => h.entry.record.id));
    overlap += store.searchVector(vector, filters("scale")).filter((h) => exact.has(h.entry.record.id)).length;
  }
  // Blocks of exact then ANN, repeat after repeat, medians kept: load from other processes on this
  // shared machine falls on both alike. Not query by query: each exact scan streams the whole
  // 150 MB matrix through the caches and would leave every ANN query cold, which no session sees.
  const exactRepeats: Summary[] = [];
  const annRepeats: Summary[] = [];
  let i = 0;
  const next = () => vectors[i++ % vectors.length] as Float32Array;
  for (let r = 0; r < args.repeats; r++) {
    exactRepeats.push(
      await timeCalls(() => store.searchVector(next(), filters("scale"), { exact: true }), {
        samples: args.samples,
        warmup: 20,
      }),
    );
    annRepeats.push(
      await timeCalls(() => store.searchVector(next(), filters("scale")), { samples: args.samples, warmup: 20 }),
    );
  }
  const exact = medianOf(exactRepeats);
  const ann = medianOf(annRepeats);
  return { size, recallAt10: overlap / (vectors.length * 10), exact, ann };
}

interface Restart {
  /** Store open (log replay) until every HNSW graph is searchable. */
  readyS: number;
  sources: string[];
  /** The same open without the saved graph (it is rebuilt), for comparison. */
  buildS: number;
}

/**
 * Closes the store (saving its graph) and opens it again: the restart a user would see. The
 * baseline in the same run is a restart that may not use the saved graph and rebuilds it.
 */
async function timeRestart(store: MemoryStore, dir: string): Promise<Restart> {
  store.close();
  const reopen = async (persistAnn: boolean) => {
    const started = performance.now();
    const reopened = await MemoryStore.open({ dir, embedder: createLexicalEmbedder(), persistAnn });
    try {
      while (reopened.counts().annPending > 0 || reopened.annStates().some((s) => s.source === "building"))
        await new Promise((resolve) => setTimeout(resolve, 10));
      return {
        s: (performance.now() - started) / 1000,
        sources: reopened
          .annStates()
          .map((s) => `${s.tier} ${s.source}${s.rebuildReason === undefined ? "" : ` (${s.rebuildReason})`}`),
      };
    } finally {
      reopened.close();
    }
  };
  const loaded = await reopen(true);
  const rebuilt = await reopen(false);
  return { readyS: loaded.s, sources: loaded.sources, buildS: rebuilt.s };
}

function report(
  args: Args,
  recall: Recall[],
  rows: SizeRow[],
  ann: AnnResult | undefined,
  restart: Restart | undefined,
  store: MemoryStore,
): void {
  const out: string[] = [
    "",
    "Recall on 10 distinct memories (lexical embedder):",
    "  path                                              @1    @3    @10",
  ];
  for (const r of recall)
    out.push(`  ${r.path.padEnd(48)} ${r.at1.toFixed(2)}  ${r.at3.toFixed(2)}  ${r.at10.toFixed(2)}`);
  out.push(
    "",
    `Latency, ms (p50 / p95 / min), medians of ${args.repeats} repeats × ${args.samples} queries, 384 dims:`,
  );
  out.push(
    `  ${"size".padStart(7)}  ${"in-process exact scan".padEnd(24)}${"HTTP /memory/search".padEnd(24)}${"peer, loopback".padEnd(24)}${"lab: local (loopback)".padEnd(24)}${"lab: peer (mesh)".padEnd(24)}peer − local p50`,
  );
  const cell = (s?: Summary) =>
    s === undefined ? "—".padEnd(24) : `${fmt(s.p50)} / ${fmt(s.p95)} / ${fmt(s.min)}`.padEnd(24);
  const d = (a: number, z: number) => `${a - z >= 0 ? "+" : ""}${fmt(a - z)} ms`;
  for (const r of rows)
    out.push(
      `  ${String(r.size).padStart(7)}  ${cell(r.scan)}${cell(r.http)}${cell(r.peerLoopback)}${cell(r.lab?.local)}${cell(r.lab?.peer)}${r.lab ? d(r.lab.peer.p50, r.lab.local.p50) : "—"}`,
    );
  if (rows.some((r) => r.lab !== undefined)) {
    out.push(
      "  The first three columns run in the bench process (client and server in one process). The lab columns are one real",
    );
    out.push(
      "  sidecar on linux, warmed up, queried by separate client processes: locally on its loopback, and signed from mac over",
    );
    out.push("  the mesh, repeats alternated. Sidecar main-thread CPU per request (ms), local / peer:");
    out.push(
      `  ${rows
        .filter((r) => r.lab !== undefined)
        .map((r) => `${r.size}: ${fmt(r.lab?.localCpuMs ?? Number.NaN)} / ${fmt(r.lab?.peerCpuMs ?? Number.NaN)}`)
        .join(", ")}`,
    );
  }
  const broken = rows.find((r) => r.breakdown !== undefined);
  if (broken?.breakdown !== undefined && broken.lab !== undefined) {
    const b = broken.breakdown;
    const line = (name: string, s: Summary) => out.push(`  ${name.padEnd(72)}${cell(s)}`);
    out.push(
      "",
      `Peer path taken apart at ${broken.size} (p50 / p95 / min; every lab client is a separate process; cells interleaved over ${args.repeats} repeats):`,
    );
    line("local HTTP /memory/search (in the bench process)", broken.http);
    line("local /memory/search on the lab sidecar, from linux's own loopback", broken.lab.local);
    line("signed peer search, linux's own loopback (no network)", b.searchLoopback);
    line("signed peer search, mac → linux over the bare underlay (no WireGuard)", b.searchUnderlay);
    line("signed peer search, mac → linux over the WireGuard mesh", b.searchMesh);
    line("floor: bare HTTP GET, linux's own loopback", b.floorLoopback);
    line("floor: bare HTTP GET, mac → linux over the bare underlay", b.floorUnderlay);
    line("floor: bare HTTP GET, mac → linux over the WireGuard mesh", b.floorMesh);
    line(`floor: bare GET of ${b.answerBytes} bytes (a search answer), over the bare underlay`, b.sizedFloorUnderlay);
    line(`floor: bare GET of ${b.answerBytes} bytes (a search answer), over the WireGuard mesh`, b.sizedFloorMesh);
    line(
      `busy floor: that GET after ${fmt(b.busyMs)} ms of CPU (the sidecar's per peer search), linux's loopback`,
      b.busyFloorLoopback,
    );
    line(`busy floor: that GET after ${fmt(b.busyMs)} ms of CPU, over the WireGuard mesh`, b.busyFloorMesh);
    out.push(
      `  peer over the mesh adds ${d(broken.lab.peer.p50, broken.lab.local.p50)} p50 over local on the same sidecar (goal ≤ +2 ms); ${d(broken.lab.peer.p50, broken.http.p50)} over the bench's in-process HTTP;`,
    );
    out.push(
      `  signing and verifying (signed peer search − local search, both on linux's loopback) ${d(b.searchLoopback.p50, broken.lab.local.p50)};`,
    );
    out.push(
      `  the mesh for this exchange (peer search: mesh − linux's loopback) ${d(b.searchMesh.p50, b.searchLoopback.p50)}; the mesh's own floor for it (busy sized GET: mesh − loopback) ${d(b.busyFloorMesh.p50, b.busyFloorLoopback.p50)}, idle server ${d(b.sizedFloorMesh.p50, b.floorLoopback.p50)};`,
    );
    out.push(
      `  WireGuard alone (bare GET, mesh − underlay) ${d(b.floorMesh.p50, b.floorUnderlay.p50)}; a search-sized answer over WireGuard (mesh − underlay) ${d(b.sizedFloorMesh.p50, b.sizedFloorUnderlay.p50)}.`,
    );
  }
  if (ann !== undefined) {
    out.push(
      "",
      `ANN (HNSW ${store.annOptions.quantization}, M=${store.annOptions.connectivity}, ef=${store.annOptions.expansionSearch}, best ${store.annOptions.candidatesMin} candidates re-scored exactly) vs exact at ${ann.size}: recall@10 ${ann.recallAt10.toFixed(3)}; p50 ${fmt(ann.ann.p50)} ms vs exact ${fmt(ann.exact.p50)} ms (p95 ${fmt(ann.ann.p95)} vs ${fmt(ann.exact.p95)})`,
    );
  }
  if (restart !== undefined) {
    out.push(
      `Restart at ${ann?.size ?? "?"}: searchable ${restart.readyS.toFixed(1)} s after open with the saved HNSW graph (${restart.sources.join(", ")}), ${restart.buildS.toFixed(1)} s when it is rebuilt; log replay included in both.`,
    );
  }
  process.stdout.write(`${out.join("\n")}\n`);
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = join(resultsDir, `retrieval${args.tag === "" ? "" : `-${args.tag}`}.json`);
  writeFileSync(
    resultsFile,
    JSON.stringify(
      { at: new Date().toISOString(), args, recall, rows, ann, restart, cache: store.cacheStats },
      null,
      2,
    ),
  );
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

await main();
