// Bench: tokens/s and time to first token for the same model and prompt, in one run:
//   raw node-llama-cpp in-process  vs  through a local sidecar (HTTP + SSE)  vs  through a peer
//   across the lab's WireGuard mesh (mac's sidecar routes to linux's), medians over repeats.
// Goals (issue 4): sidecar ≥ 0.95 × raw tokens/s, peer ≥ 0.90 × raw; local TTFT overhead ≤ 5 ms.
//
//   node --import tsx tools/bench/inference/main.ts [--model FILE.gguf | --shape small] [--max-tokens 256] [--repeats 7] [--no-lab]
//
// Without --model it uses the tiny TEST model (random weights), whose per-token compute is so small
// that the numbers mostly measure per-token transport overhead — the worst case for the ratios.
// --shape small generates a ~100 MB random-weight TEST model with per-token times closer to a small
// real model's (no real model can be downloaded here).
// Every path uses 1 thread (the right count on this 2-core box) and greedy decoding.
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { getLlama, LlamaChat, type ChatHistoryItem } from "node-llama-cpp";
import { parseArgs } from "../../src/cli/command.js";
import { cachedSmallTestModel, cachedTinyModel } from "../../src/model/tiny.js";
import { repoRoot, serviceEntry, tsNodeArgs } from "../../src/lib/repo.js";
import { startSupervised, stopSupervised, waitFor } from "../../src/lib/supervisor.js";
import { timedStream, type RunTiming } from "./client.js";
import { labPeerTimings } from "./lab-peer.js";

const resultsFile = join(repoRoot, "tools/bench/results/inference.json");
const prompt = "Tell me, in detail, how a household potluck dinner is organised.";
const threads = 1;
const contextSize = 2048;

async function main(): Promise<void> {
  const { flags } = parseArgs(process.argv.slice(2), ["no-lab"]);
  const modelPath = flags.get("model") ?? (flags.get("shape") === "small" ? cachedSmallTestModel(1) : cachedTinyModel(1));
  const modelId = basename(modelPath).replace(/\.gguf$/i, "");
  const maxTokens = Number(flags.get("max-tokens") ?? 256);
  const repeats = Math.min(50, Number(flags.get("repeats") ?? 7));
  const rows: Array<{ path: string; runs: RunTiming[]; coldStartMs?: number }> = [];

  rows.push({ path: "raw node-llama-cpp", runs: await rawTimings(modelPath, maxTokens, repeats) });
  rows.push(await localSidecarTimings(modelPath, modelId, maxTokens, repeats));
  if (!flags.has("no-lab")) {
    const peer = await labPeerTimings({ modelPath, modelId, maxTokens, repeats, prompt }).catch((error: unknown) => {
      process.stderr.write(`lab peer path skipped: ${error instanceof Error ? error.message : String(error)}\n`);
      return undefined;
    });
    if (peer !== undefined) rows.push(peer);
  }
  report(rows, { modelId, maxTokens, repeats });
}

async function rawTimings(modelPath: string, maxTokens: number, repeats: number): Promise<RunTiming[]> {
  const llama = await getLlama({ build: "never", gpu: false, maxThreads: threads });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize, sequences: 1, threads });
  const runs: RunTiming[] = [];
  // Best practice for the baseline: one sequence and one chat (its template resolved once).
  const sequence = context.getSequence();
  const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    for (let i = 0; i < repeats + 1; i++) {
      const history: ChatHistoryItem[] = [{ type: "user", text: prompt }, { type: "model", response: [] }];
      let ttftMs: number | undefined;
      let tokens = 0;
      const started = performance.now();
      await chat.generateResponse(history, {
        maxTokens,
        temperature: 0,
        onToken: (t) => (tokens += t.length),
        onTextChunk: (text) => {
          if (ttftMs === undefined && text.length > 0) ttftMs = performance.now() - started;
        },
      });
      const totalMs = performance.now() - started;
      if (i > 0) runs.push({ ttftMs: ttftMs ?? totalMs, totalMs, completionTokens: tokens, servedBy: "in-process" }); // run 0 warms up
    }
  } finally {
    chat.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return runs;
}

async function localSidecarTimings(modelPath: string, modelId: string, maxTokens: number, repeats: number) {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-inference-"));
  const started = performance.now();
  const proc = startSupervised({
    name: "sidecar",
    command: process.execPath,
    args: tsNodeArgs(serviceEntry.sidecar),
    env: { ...process.env, POTLUCK_PORT: String(port), POTLUCK_BIND: "127.0.0.1", POTLUCK_DATA_DIR: dataDir, POTLUCK_MODELS: modelPath, POTLUCK_THREADS: String(threads), POTLUCK_CONTEXT_SIZE: String(contextSize), POTLUCK_MACHINE: "bench" },
    onLine: () => undefined,
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitFor(async () => (await fetch(`${url}/health`).then((r) => r.json()).catch(() => ({}))).status === "ok", { timeoutMs: 180_000 });
    if (!ready) throw new Error("the local sidecar did not become ready");
    const coldStartMs = performance.now() - started;
    const body = { model: modelId, messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, temperature: 0, stream: true };
    await timedStream(url, body);
    const runs: RunTiming[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await timedStream(url, body));
    return { path: "local sidecar (HTTP+SSE)", runs, coldStartMs };
  } finally {
    await stopSupervised(proc);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function report(rows: Array<{ path: string; runs: RunTiming[]; coldStartMs?: number }>, meta: { modelId: string; maxTokens: number; repeats: number }): void {
  const summary = rows.map((row) => ({
    path: row.path,
    tokensPerS: median(row.runs.map((r) => (r.completionTokens / r.totalMs) * 1000)),
    ttftMs: median(row.runs.map((r) => r.ttftMs)),
    servedBy: row.runs[0]?.servedBy ?? "?",
    coldStartMs: row.coldStartMs,
  }));
  const raw = summary[0]!;
  const table = summary.map((s) => ({
    ...s,
    ratioVsRaw: s.tokensPerS / raw.tokensPerS,
    ttftOverheadMs: s.ttftMs - raw.ttftMs,
  }));
  process.stdout.write(`\ninference bench — model ${meta.modelId}, ${meta.maxTokens} tokens, greedy, ${threads} thread, median of ${meta.repeats}\n`);
  process.stdout.write(`${"path".padEnd(28)} ${"tokens/s".padStart(9)} ${"× raw".padStart(7)} ${"TTFT ms".padStart(9)} ${"+TTFT ms".padStart(9)}  served by\n`);
  for (const t of table) {
    process.stdout.write(`${t.path.padEnd(28)} ${t.tokensPerS.toFixed(0).padStart(9)} ${t.ratioVsRaw.toFixed(3).padStart(7)} ${t.ttftMs.toFixed(1).padStart(9)} ${t.ttftOverheadMs.toFixed(1).padStart(9)}  ${t.servedBy}${t.coldStartMs === undefined ? "" : ` (cold start ${(t.coldStartMs / 1000).toFixed(1)} s)`}\n`);
  }
  mkdirSync(dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, JSON.stringify({ at: new Date().toISOString(), ...meta, threads, rows: table, runs: rows }, null, 2));
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

await main();
