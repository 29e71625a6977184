// Bench: tokens/s and time to first token for the same model and prompt, in one run:
//   raw node-llama-cpp in-process  vs  through a local sidecar (HTTP + SSE)  vs  through a peer
//   across the lab's WireGuard mesh (mac's sidecar routes to linux's)  vs  the floor of that mesh
//   (raw node-llama-cpp on linux streamed by a bare node:http server to mac), and the same bare
//   stream on loopback as the local sidecar's floor; medians over repeats.
// Every client and the raw runner are long-lived processes, warmed up before the timed rounds.
// Goals (issue 4): sidecar ≥ 0.95 × raw tokens/s, peer ≥ 0.90 × raw; local TTFT overhead ≤ 5 ms.
//
//   node --import tsx tools/bench/inference/main.ts [--model FILE.gguf | --shape small] [--max-tokens 256] [--repeats
// 21] [--no-lab] [--no-pin]
//       [--latency-ms N] [--compare-head-start]
//
// --latency-ms holds every mesh datagram between mac and linux N ms each way (a slower household
// link; tools/src/lab/latency.ts). --compare-head-start adds a second sidecar on mac with
// POTLUCK_HEAD_START=0, so the peer path is measured with and without the head start in one run.
//
// A sidecar running a model on one thread pins itself to one CPU (apps/sidecar cpu-pin.ts), so:
// - the goal's baseline is raw node-llama-cpp as it runs by default, unpinned; a second raw row,
//   pinned to the sidecar's CPU, shows what the sidecar itself costs, and the loopback floor is
//   pinned there too;
// - the lab's two hosts stand for two machines, so each gets a core of its own (linux on the
//   sidecar's CPU, mac and its client on another), and the peer paths are compared with the
//   pinned raw row, which is how linux runs its model.
// --no-pin (and a 1-CPU box) turns all of that off: sidecars run with POTLUCK_CPU_PIN=off, and the
// lab's relaying sidecar, both wireguard-gos and the client share the cores with the serving model
// thread, a squeeze two real machines never have.
//
// Without --model it uses the tiny TEST model (random weights), whose per-token compute is so small
// that the numbers mostly measure per-token transport overhead — the worst case for the ratios.
// --shape small generates a ~100 MB random-weight TEST model with per-token times closer to a small
// real model's (no real model can be downloaded here). Every path uses 1 thread (the right count on
// this 2-core box) and greedy decoding; raw runs in its own process like the sidecars, because an
// idle llama.cpp context in the client's process measurably slows the server on 2 cores. The paths are measured
// interleaved, one run of each per
// round in a rotating order, so load from other work on the machine drifts over all three alike.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { benchFlags } from "../common/args.js";
import { cachedSmallTestModel, cachedTinyModel } from "../../src/model/tiny.js";
import { repoRoot, serviceEntry, tsNodeArgs } from "../../src/lib/repo.js";
import { startSupervised, stopSupervised, waitFor } from "../../src/lib/supervisor.js";
import { timedStream, type RunTiming } from "./client.js";
import { startLabPeer } from "./lab-peer.js";
import { pinArgv } from "../../src/lab/index.js";
import { startLineDriven } from "./line-driven.js";
import { allowedCpus, coalesceWindowMs, planCpuPin } from "@potluck/sidecar";
import { median } from "../common/stats.js";

const resultsFile = join(repoRoot, "tools/bench/results/inference.json");
const prompt = "Tell me, in detail, how a household potluck dinner is organised.";
const threads = 1;
const contextSize = 2048;
const rawName = "raw node-llama-cpp";
const rawPinnedName = "raw, pinned";

interface BenchPath {
  name: string;
  /** The raw path this one is a ratio of (default: the first, unpinned raw). */
  baseline?: string;
  coldStartMs?: number;
  once(): Promise<RunTiming>;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), {
    strings: ["latency-ms", "max-tokens", "model", "repeats", "shape"],
    booleans: ["no-lab", "no-pin", "compare-head-start"],
    positionals: false,
  });
  const latencyMs = Number(flags.get("latency-ms") ?? 0);
  // The CPU a one-thread sidecar picks for itself; linux's in the lab; mac gets another.
  const allowed = allowedCpus();
  const servingCpu =
    flags.has("no-pin") || availableParallelism() < 2
      ? undefined
      : planCpuPin({ setting: "auto", threads, models: 1, allowed, platform: process.platform }).cpu;
  const macCpu = allowed.find((cpu) => cpu !== servingCpu);
  const pinned = servingCpu !== undefined && macCpu !== undefined;
  const modelPath =
    flags.get("model") ?? (flags.get("shape") === "small" ? cachedSmallTestModel(1) : cachedTinyModel(1));
  const modelId = basename(modelPath).replace(/\.gguf$/i, "");
  const maxTokens = Number(flags.get("max-tokens") ?? 256);
  const repeats = Math.min(50, Number(flags.get("repeats") ?? 21));
  const body = {
    model: modelId,
    messages: [{ role: "user", content: prompt }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  };
  const paths: BenchPath[] = [];
  try {
    paths.push(await rawPath(rawName, modelPath, maxTokens, []));
    if (pinned) paths.push(await rawPath(rawPinnedName, modelPath, maxTokens, pinArgv(servingCpu)));
    paths.push(await localSidecarPath(modelPath, body, pinned ? "auto" : "off"));
    paths.push(await localFloorPath(modelPath, body, pinArgv(pinned ? servingCpu : undefined)));
    if (!flags.has("no-lab")) {
      const variants = flags.has("compare-head-start")
        ? [{ name: "peer, no head start", env: { POTLUCK_HEAD_START: "0" } }]
        : [];
      const lab = await startLabPeer({
        modelPath,
        modelId,
        maxTokens,
        prompt,
        contextSize,
        latencyMs,
        variants,
        ...(pinned ? { cpus: { mac: macCpu, linux: servingCpu } } : {}),
      }).catch((error: unknown) => {
        process.stderr.write(`lab peer path skipped: ${error instanceof Error ? error.message : String(error)}\n`);
        return undefined;
      });
      if (lab !== undefined) {
        const baseline = pinned ? rawPinnedName : rawName;
        // Paths close in reverse order, so the first of the lab's closes it, after the others.
        lab.paths.forEach((path, i) =>
          paths.push({ ...path, baseline, close: i === 0 ? lab.close : async () => undefined }),
        );
      }
    }
    for (const path of paths) await path.once(); // warm-up, not recorded
    const runs = new Map<string, RunTiming[]>(paths.map((p) => [p.name, []]));
    for (let round = 0; round < repeats; round++) {
      // Rotated each round: a path run right after another finishes competes with that one's
      // leftover work (its GC, its idle threads waking), which biased whichever came second.
      const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
      for (const path of order) runs.get(path.name)!.push(await path.once());
    }
    report(
      paths.map((p) => ({
        path: p.name,
        baseline: p.baseline ?? rawName,
        runs: runs.get(p.name)!,
        coldStartMs: p.coldStartMs,
      })),
      { modelId, maxTokens, repeats, latencyMs, ...(pinned ? { pinned: { serving: servingCpu, mac: macCpu } } : {}) },
    );
  } finally {
    for (const path of paths.reverse()) await path.close().catch(() => undefined);
  }
}

/** Raw node-llama-cpp in a child process (see raw-runner.ts): one line in, one timing out. */
async function rawPath(name: string, modelPath: string, maxTokens: number, pin: readonly string[]): Promise<BenchPath> {
  const runner = await startLineDriven(
    `the raw runner (${name})`,
    [
      ...pin,
      process.execPath,
      "--import",
      "tsx",
      join(repoRoot, "tools/bench/inference/raw-runner.ts"),
      modelPath,
      String(maxTokens),
      String(contextSize),
      prompt,
    ],
    { cwd: repoRoot },
  );
  return { name, once: () => runner.once(), close: () => runner.close() };
}

/** The real sidecar (main.ts) as its own process on loopback, streamed from this process. */
async function localSidecarPath(modelPath: string, body: unknown, cpuPin: "auto" | "off"): Promise<BenchPath> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const dataDir = mkdtempSync(join(tmpdir(), "potluck-bench-inference-"));
  const started = performance.now();
  const proc = startSupervised({
    name: "sidecar",
    command: process.execPath,
    args: tsNodeArgs(serviceEntry.sidecar),
    env: {
      ...process.env,
      POTLUCK_PORT: String(port),
      POTLUCK_BIND: "127.0.0.1",
      POTLUCK_DATA_DIR: dataDir,
      POTLUCK_MODELS: modelPath,
      POTLUCK_THREADS: String(threads),
      POTLUCK_CONTEXT_SIZE: String(contextSize),
      POTLUCK_MACHINE: "bench",
      POTLUCK_CPU_PIN: cpuPin,
      POTLUCK_OLLAMA_PORT: "0",
    },
    onLine: () => undefined,
  });
  const url = `http://127.0.0.1:${port}`;
  const ready = await waitFor(
    async () =>
      (
        await fetch(`${url}/health`)
          .then((r) => r.json())
          .catch(() => ({}))
      ).status === "ok",
    { timeoutMs: 180_000 },
  );
  if (!ready) {
    await stopSupervised(proc);
    throw new Error("the local sidecar did not become ready");
  }
  return {
    name: "local sidecar (HTTP+SSE)",
    coldStartMs: performance.now() - started,
    once: () => timedStream(url, body),
    close: () => stopSupervised(proc),
  };
}

/**
 * The local floor: raw node-llama-cpp behind a bare node:http server (bare-stream.ts) on loopback,
 * streamed to this process like the sidecar — what HTTP, SSE and a client cost with no sidecar.
 */
async function localFloorPath(modelPath: string, body: unknown, pin: readonly string[]): Promise<BenchPath> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  let listening = false;
  const proc = startSupervised({
    name: "bare-stream",
    ...pinnedCommand(
      pin,
      tsNodeArgs(join(repoRoot, "tools/bench/inference/bare-stream.ts"), [
        modelPath,
        String(port),
        String(contextSize),
        String(coalesceWindowMs),
        prompt,
      ]),
    ),
    onLine: (_, line) => (listening ||= line === "listening"),
  });
  if (!(await waitFor(async () => listening, { timeoutMs: 180_000 }))) {
    await stopSupervised(proc);
    throw new Error("the local bare stream did not start");
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    name: "floor: bare stream, loopback",
    once: () => timedStream(url, body),
    close: () => stopSupervised(proc),
  };
}

/** Node with `args`, under taskset when `pin` is given. */
function pinnedCommand(pin: readonly string[], args: string[]): { command: string; args: string[] } {
  return pin.length === 0
    ? { command: process.execPath, args }
    : { command: pin[0]!, args: [...pin.slice(1), process.execPath, ...args] };
}

function report(
  rows: Array<{ path: string; baseline: string; runs: RunTiming[]; coldStartMs?: number }>,
  meta: {
    modelId: string;
    maxTokens: number;
    repeats: number;
    latencyMs: number;
    pinned?: { serving: number; mac: number };
  },
): void {
  const summary = rows.map((row) => ({
    path: row.path,
    baseline: row.baseline,
    tokensPerS: median(row.runs.map((r) => (r.completionTokens / r.totalMs) * 1000)),
    // After the first token: the streaming rate alone, without routing and prompt time.
    decodeTokensPerS: median(
      row.runs.map((r) => ((r.completionTokens - 1) / Math.max(1e-3, r.totalMs - r.ttftMs)) * 1000),
    ),
    ttftMs: median(row.runs.map((r) => r.ttftMs)),
    servedBy: row.runs[0]?.servedBy ?? "?",
    coldStartMs: row.coldStartMs,
  }));
  const table = summary.map((s) => {
    const raw = summary.find((r) => r.path === s.baseline) ?? summary[0]!;
    return {
      ...s,
      ratioVsRaw: s.tokensPerS / raw.tokensPerS,
      decodeRatioVsRaw: s.decodeTokensPerS / raw.decodeTokensPerS,
      ttftOverheadMs: s.ttftMs - raw.ttftMs,
    };
  });
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  process.stdout.write(
    `\ninference bench — model ${meta.modelId}, ${meta.maxTokens} tokens, greedy, ${threads} thread, median of ${meta.repeats} interleaved rounds, ${meta.pinned === undefined ? "unpinned (POTLUCK_CPU_PIN=off)" : `pinned: the sidecar, its floor, "${rawPinnedName}" and the lab's linux on CPU ${meta.pinned.serving}, the lab's mac and its client on CPU ${meta.pinned.mac}`}, ${meta.latencyMs > 0 ? `mesh held ${meta.latencyMs} ms each way, ` : ""}load average at the end ${load}\n`,
  );
  process.stdout.write(
    'tokens/s is end to end (request to footer, the goal\'s measure); decode is after the first token; × raw is against the raw row named in "vs"\n',
  );
  process.stdout.write(
    `${"path".padEnd(28)} ${"tokens/s".padStart(9)} ${"× raw".padStart(7)} ${"decode/s".padStart(9)} ${"× raw".padStart(7)} ${"TTFT ms".padStart(9)} ${"+TTFT ms".padStart(9)}  ${"vs".padEnd(22)} served by\n`,
  );
  for (const t of table) {
    process.stdout.write(
      `${t.path.padEnd(28)} ${t.tokensPerS.toFixed(0).padStart(9)} ${t.ratioVsRaw.toFixed(3).padStart(7)} ${t.decodeTokensPerS.toFixed(0).padStart(9)} ${t.decodeRatioVsRaw.toFixed(3).padStart(7)} ${t.ttftMs.toFixed(1).padStart(9)} ${t.ttftOverheadMs.toFixed(1).padStart(9)}  ${(t.baseline === t.path ? "—" : t.baseline).padEnd(22)} ${t.servedBy}${t.coldStartMs === undefined ? "" : ` (cold start ${(t.coldStartMs / 1000).toFixed(1)} s)`}\n`,
    );
  }
  // The issue's goals, each against its own raw row.
  const goal = (
    path: string,
    what: string,
    value: (t: (typeof table)[number]) => number,
    ok: (v: number) => boolean,
    unit: string,
  ) => {
    const t = table.find((r) => r.path === path);
    if (t !== undefined)
      process.stdout.write(
        `goal: ${what} ${value(t).toFixed(unit === "ms" ? 1 : 3)}${unit === "ms" ? " ms" : " ×"} — ${ok(value(t)) ? "met" : "missed"}\n`,
      );
  };
  process.stdout.write("\n");
  goal(
    "local sidecar (HTTP+SSE)",
    "local sidecar ≥ 0.95 × raw:",
    (t) => t.ratioVsRaw,
    (v) => v >= 0.95,
    "×",
  );
  goal(
    "local sidecar (HTTP+SSE)",
    "local TTFT overhead ≤ 5 ms:",
    (t) => t.ttftOverheadMs,
    (v) => v <= 5,
    "ms",
  );
  goal(
    "peer over lab mesh",
    "peer ≥ 0.90 × raw:",
    (t) => t.ratioVsRaw,
    (v) => v >= 0.9,
    "×",
  );
  const local = table.find((t) => t.path === "local sidecar (HTTP+SSE)");
  const rawPinned = table.find((t) => t.path === rawPinnedName);
  if (local !== undefined && rawPinned !== undefined) {
    process.stdout.write(
      `local sidecar ÷ ${rawPinnedName} (what the sidecar itself costs): ${(local.tokensPerS / rawPinned.tokensPerS).toFixed(3)} × end to end, ${(local.decodeTokensPerS / rawPinned.decodeTokensPerS).toFixed(3)} × decode\n`,
    );
  }
  // Each path against its floor: the same stream with no sidecar in between, over the same link.
  process.stdout.write("\n");
  for (const [path, floorPath] of [
    ["local sidecar (HTTP+SSE)", "floor: bare stream, loopback"],
    ["peer over lab mesh", "floor: bare stream, mesh"],
    ["peer, no head start", "floor: bare stream, mesh"],
  ] as const) {
    const over = table.find((t) => t.path === path);
    const floor = table.find((t) => t.path === floorPath);
    if (over === undefined || floor === undefined) continue;
    process.stdout.write(
      `${path} ÷ its floor: ${(over.tokensPerS / floor.tokensPerS).toFixed(3)} × end to end, ${(over.decodeTokensPerS / floor.decodeTokensPerS).toFixed(3)} × decode, ${(over.ttftMs - floor.ttftMs).toFixed(1)} ms more to the first token\n`,
    );
  }
  mkdirSync(dirname(resultsFile), { recursive: true });
  writeFileSync(
    resultsFile,
    JSON.stringify(
      { at: new Date().toISOString(), ...meta, threads, loadAverage: loadavg(), rows: table, runs: rows },
      null,
      2,
    ),
  );
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

await main();
