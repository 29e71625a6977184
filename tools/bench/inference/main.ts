// Bench: tokens/s and time to first token for the same model and prompt, in one run:
//   raw node-llama-cpp in-process  vs  through a local sidecar (HTTP + SSE)  vs  through a peer
//   across the lab's WireGuard mesh (mac's sidecar routes to linux's)  vs  the floor of that mesh
//   (raw node-llama-cpp on linux streamed by a bare node:http server to mac), and the same bare
//   stream on loopback as the local sidecar's floor; medians over repeats.
// Every client and the raw runner are long-lived processes, warmed up before the timed rounds.
// Goals (issue 4): sidecar ≥ 0.95 × raw tokens/s, peer ≥ 0.90 × raw; local TTFT overhead ≤ 5 ms.
// Issue 19's re-read peer goals (--goals, one run): (a) peer ÷ the bare mesh floor ≥ 0.97 ×, (b)
// peer decode after the first token ÷ raw ≥ 0.95 ×, (c) peer ÷ raw on a model shaped to run at a
// real 7–8B model's rate (shapes.ts; a second phase with its own lab) ≥ 0.95 ×, (d) the peer's
// first token ≤ +2 ms over the floor's; each from per-round pairs (median and range), with the
// peer's extra first-token time split into its pieces (reportComponents).
//
//   node --import tsx tools/bench/inference/main.ts [--model FILE.gguf | --shape small|rate] [--max-tokens 256]
//       [--repeats 21] [--no-lab] [--no-pin] [--latency-ms N] [--compare-head-start] [--compare-confirmed]
//       [--goals [--rate-repeats 5] [--rate-max-tokens 64]]
//
// --compare-confirmed (on with --goals) adds a second sidecar on mac with
// POTLUCK_PATH_CONFIRMED_MS=10000: on a path confirmed in the last 10 s the first token does not
// wait for its own fresh probe (routing/confirmed.ts; off by default).
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
import { allowedCpus, coalesceWindowMs, PathConfirmLimits, planCpuPin } from "@potluck/sidecar";
import { median } from "../common/stats.js";
import { generateIdentity, privateKeyFromPem, ReplayCache, signRequest, verifyRequest } from "@potluck/peer";
import { cachedRateTestModel } from "./shapes.js";

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
  /** Timed alone as a piece of the peer path (a probe), not a reply. */
  component?: boolean;
  once(): Promise<RunTiming>;
  close(): Promise<void>;
}

interface Phase {
  modelPath: string;
  maxTokens: number;
  repeats: number;
  /** The local sidecar and its loopback floor too (the goals' shaped-model phase leaves them out). */
  local: boolean;
}

interface Options {
  lab: boolean;
  latencyMs: number;
  compareHeadStart: boolean;
  /** A second sidecar on mac whose first token on a confirmed path skips its probe (routing/confirmed.ts). */
  compareConfirmed: boolean;
  servingCpu?: number;
  macCpu?: number;
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), {
    strings: ["latency-ms", "max-tokens", "model", "repeats", "shape", "rate-repeats", "rate-max-tokens"],
    booleans: ["no-lab", "no-pin", "compare-head-start", "compare-confirmed", "goals"],
    positionals: false,
  });
  // The CPU a one-thread sidecar picks for itself; linux's in the lab; mac gets another.
  const allowed = allowedCpus();
  const servingCpu =
    flags.has("no-pin") || availableParallelism() < 2
      ? undefined
      : planCpuPin({ setting: "auto", threads, models: 1, allowed, platform: process.platform }).cpu;
  const macCpu = allowed.find((cpu) => cpu !== servingCpu);
  const options: Options = {
    lab: !flags.has("no-lab"),
    latencyMs: Number(flags.get("latency-ms") ?? 0),
    compareHeadStart: flags.has("compare-head-start"),
    compareConfirmed: flags.has("compare-confirmed") || flags.has("goals"),
    ...(servingCpu !== undefined && macCpu !== undefined ? { servingCpu, macCpu } : {}),
  };
  const shape = flags.get("shape");
  const modelPath =
    flags.get("model") ??
    (shape === "small" ? cachedSmallTestModel(1) : shape === "rate" ? cachedRateTestModel(1) : cachedTinyModel(1));
  const repeats = Math.min(50, Number(flags.get("repeats") ?? 21));
  const first = await runPhase(
    { modelPath, maxTokens: Number(flags.get("max-tokens") ?? 256), repeats, local: true },
    options,
  );
  if (!flags.has("goals")) {
    writeResults({ ...first.meta, rows: first.table, runs: first.rows, components: first.components });
    return;
  }
  // Goal (c): the same peer path on a model that runs at a real 7–8B model's rate (shapes.ts).
  const rate = await runPhase(
    {
      modelPath: cachedRateTestModel(1),
      maxTokens: Number(flags.get("rate-max-tokens") ?? 64),
      repeats: Math.min(50, Number(flags.get("rate-repeats") ?? 5)),
      local: false,
    },
    options,
  );
  const goals = goalsReport(first, rate);
  writeResults({
    goals,
    phases: [first, rate].map((p) => ({ ...p.meta, rows: p.table, runs: p.rows, components: p.components })),
  });
}

type PhaseResult = Awaited<ReturnType<typeof runPhase>>;

/** One model: every path interleaved over `repeats` rounds, then its table. */
async function runPhase(phase: Phase, options: Options) {
  const { modelPath, maxTokens, repeats } = phase;
  const { servingCpu, macCpu } = options;
  const pinned = servingCpu !== undefined && macCpu !== undefined;
  const modelId = basename(modelPath).replace(/\.gguf$/i, "");
  const body = {
    model: modelId,
    messages: [{ role: "user", content: prompt }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  };
  const paths: BenchPath[] = [];
  try {
    if (phase.local || !pinned) paths.push(await rawPath(rawName, modelPath, maxTokens, []));
    if (pinned) paths.push(await rawPath(rawPinnedName, modelPath, maxTokens, pinArgv(servingCpu)));
    if (phase.local) {
      paths.push(await localSidecarPath(modelPath, body, pinned ? "auto" : "off"));
      paths.push(await localFloorPath(modelPath, body, pinArgv(pinned ? servingCpu : undefined)));
    }
    if (options.lab) {
      const variants = [
        ...(options.compareHeadStart ? [{ name: "peer, no head start", env: { POTLUCK_HEAD_START: "0" } }] : []),
        ...(options.compareConfirmed
          ? [{ name: confirmedName, env: { POTLUCK_PATH_CONFIRMED_MS: String(PathConfirmLimits.onMs) } }]
          : []),
      ];
      const lab = await startLabPeer({
        modelPath,
        modelId,
        maxTokens,
        prompt,
        contextSize,
        latencyMs: options.latencyMs,
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
    const rows = paths.map((p) => ({
      path: p.name,
      baseline: p.baseline ?? (phase.local || !pinned ? rawName : rawPinnedName),
      runs: runs.get(p.name)!,
      coldStartMs: p.coldStartMs,
      component: p.component === true,
    }));
    const meta = {
      modelId,
      maxTokens,
      repeats,
      latencyMs: options.latencyMs,
      ...(pinned ? { pinned: { serving: servingCpu, mac: macCpu } } : {}),
    };
    const components = await signingCosts();
    const table = report(
      rows.filter((r) => !r.component),
      meta,
    );
    reportComponents(rows, table, components);
    return { meta, rows, table, components };
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
) {
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
    `${"path".padEnd(32)} ${"tokens/s".padStart(9)} ${"× raw".padStart(7)} ${"decode/s".padStart(9)} ${"× raw".padStart(7)} ${"TTFT ms".padStart(9)} ${"+TTFT ms".padStart(9)}  ${"vs".padEnd(22)} served by\n`,
  );
  for (const t of table) {
    process.stdout.write(
      `${t.path.padEnd(32)} ${t.tokensPerS.toFixed(0).padStart(9)} ${t.ratioVsRaw.toFixed(3).padStart(7)} ${t.decodeTokensPerS.toFixed(0).padStart(9)} ${t.decodeRatioVsRaw.toFixed(3).padStart(7)} ${t.ttftMs.toFixed(1).padStart(9)} ${t.ttftOverheadMs.toFixed(1).padStart(9)}  ${(t.baseline === t.path ? "—" : t.baseline).padEnd(22)} ${t.servedBy}${t.coldStartMs === undefined ? "" : ` (cold start ${(t.coldStartMs / 1000).toFixed(1)} s)`}\n`,
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
    [confirmedName, "floor: bare stream, mesh"],
    ["signed /peer/infer from mac", "floor: bare stream, mesh"],
  ] as const) {
    const over = table.find((t) => t.path === path);
    const floor = table.find((t) => t.path === floorPath);
    if (over === undefined || floor === undefined) continue;
    process.stdout.write(
      `${path} ÷ its floor: ${(over.tokensPerS / floor.tokensPerS).toFixed(3)} × end to end, ${(over.decodeTokensPerS / floor.decodeTokensPerS).toFixed(3)} × decode, ${(over.ttftMs - floor.ttftMs).toFixed(1)} ms more to the first token\n`,
    );
  }
  return table;
}

type Row = { path: string; baseline: string; runs: RunTiming[]; component: boolean };
type TableRow = ReturnType<typeof report>[number];

const peerName = "peer over lab mesh";
const meshFloorName = "floor: bare stream, mesh";
const directName = "signed /peer/infer from mac";
const probeName = "probe: signed, large, model";
const confirmedName = "peer, confirmed path";

/**
 * Where the peer's first token goes beyond the mesh floor's, from paths timed in the same rounds:
 * the serving side (a signed /peer/infer straight from mac, against the bare stream), the asking
 * side (mac's sidecar: the loopback hop, routing and its probe, the relay: the peer path against
 * that direct call), the probe's own round trip, and the signing and verifying CPU per request.
 */
function reportComponents(rows: Row[], table: TableRow[], signing: SigningCosts): void {
  const ttft = (name: string) => table.find((t) => t.path === name)?.ttftMs;
  const [peer, floor, direct] = [ttft(peerName), ttft(meshFloorName), ttft(directName)];
  const probe = rows.find((r) => r.path === probeName);
  const lines: string[] = [];
  if (peer !== undefined && floor !== undefined)
    lines.push(`peer first token over the mesh floor's: ${signed(peer - floor)} ms`);
  if (direct !== undefined && floor !== undefined)
    lines.push(`  serving side (signed /peer/infer from mac − floor): ${signed(direct - floor)} ms`);
  if (peer !== undefined && direct !== undefined)
    lines.push(
      `  asking side (mac's sidecar: loopback hop, routing, probe, relay − direct): ${signed(peer - direct)} ms`,
    );
  if (probe !== undefined) {
    const ms = probe.runs.map((r) => r.ttftMs);
    lines.push(`  the routing probe alone, round trip: ${median(ms).toFixed(2)} ms (${range(ms, 2)})`);
  }
  const gated = rows.find((r) => r.path === peerName)?.runs;
  const confirmed = rows.find((r) => r.path === confirmedName)?.runs;
  if (gated !== undefined && confirmed !== undefined) {
    // Paired by round (each round ran both, in a rotating order): the load of the moment cancels.
    const saved = confirmed.map((run, i) => gated[i]!.ttftMs - run.ttftMs);
    lines.push(
      `  first token saved by not holding it for its probe (routing/confirmed.ts), per-round pairs: ${median(saved).toFixed(1)} ms (${range(saved, 1)})`,
    );
  }
  const loopFloor = ttft("floor: bare stream, loopback");
  const rawPinned = ttft(rawPinnedName) ?? ttft(rawName);
  if (loopFloor !== undefined && rawPinned !== undefined)
    lines.push(`  one HTTP+SSE hop on loopback (local floor − raw): ${signed(loopFloor - rawPinned)} ms`);
  lines.push(
    `  signing one /peer/infer request ${signing.signUs.toFixed(0)} µs, verifying it (with the replay cache) ${signing.verifyUs.toFixed(0)} µs`,
  );
  process.stdout.write(`\n${lines.join("\n")}\n`);
}

interface SigningCosts {
  signUs: number;
  verifyUs: number;
}

/** CPU per request of the signature both ends of /peer/infer pay, in this process (median of 200). */
async function signingCosts(): Promise<SigningCosts> {
  const identity = generateIdentity();
  const privateKey = privateKeyFromPem(identity.privateKeyPem);
  const body = JSON.stringify({
    jobId: "job-x",
    model: "m",
    messages: [{ role: "user", content: prompt }],
    maxTokens: 256,
    requester: { machine: "mac", owner: "home" },
  });
  const replay = new ReplayCache();
  const signUs: number[] = [];
  const verifyUs: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t = performance.now();
    const headers = signRequest(
      { method: "POST", path: "/peer/infer", body, target: "linux" },
      { machine: "mac", privateKey },
    );
    signUs.push((performance.now() - t) * 1000);
    t = performance.now();
    const verified = await verifyRequest(
      { method: "POST", path: "/peer/infer", body: Buffer.from(body), headers: (name) => headers[name] },
      { target: "linux", replay, lookupKey: () => identity.publicKey },
    );
    verifyUs.push((performance.now() - t) * 1000);
    if (!verified.ok) throw new Error(`the signing bench's own request failed to verify: ${verified.message}`);
  }
  return { signUs: median(signUs), verifyUs: median(verifyUs) };
}

/** Issue 19's re-read goals (a)–(d), from the tiny-model phase and the rate-shaped one. */
function goalsReport(tiny: PhaseResult, rate: PhaseResult) {
  const paired = (p: PhaseResult, path: string, floor: string, value: (a: RunTiming, b: RunTiming) => number) => {
    const a = p.rows.find((r) => r.path === path)?.runs;
    const b = p.rows.find((r) => r.path === floor)?.runs;
    // Both ran in every round, in a rotating order: each round's pair shares its moment's load.
    return a === undefined || b === undefined ? [] : a.map((run, i) => value(run, b[i]!));
  };
  const rateOf = (r: RunTiming) => r.completionTokens / r.totalMs;
  const decodeOf = (r: RunTiming) => (r.completionTokens - 1) / Math.max(1e-3, r.totalMs - r.ttftMs);
  const baseline = tiny.rows.find((r) => r.path === peerName)?.baseline ?? rawName;
  const rateBaseline = rate.rows.find((r) => r.path === peerName)?.baseline ?? rawName;
  const goals = [
    {
      goal: "(a) peer ÷ bare mesh floor, end to end, tiny model",
      target: "≥ 0.97 ×",
      values: paired(tiny, peerName, meshFloorName, (a, b) => rateOf(a) / rateOf(b)),
      met: (v: number) => v >= 0.97,
      unit: "×",
    },
    {
      goal: `(b) peer decode after the first token ÷ ${baseline}, tiny model`,
      target: "≥ 0.95 ×",
      values: paired(tiny, peerName, baseline, (a, b) => decodeOf(a) / decodeOf(b)),
      met: (v: number) => v >= 0.95,
      unit: "×",
    },
    {
      goal: `(c) peer ÷ ${rateBaseline}, end to end, rate-shaped model (${rate.meta.modelId})`,
      target: "≥ 0.95 ×",
      values: paired(rate, peerName, rateBaseline, (a, b) => rateOf(a) / rateOf(b)),
      met: (v: number) => v >= 0.95,
      unit: "×",
    },
    {
      goal: "(d) peer first token − bare mesh floor's, tiny model",
      target: "≤ +2 ms",
      values: paired(tiny, peerName, meshFloorName, (a, b) => a.ttftMs - b.ttftMs),
      met: (v: number) => v <= 2,
      unit: "ms",
    },
    {
      // The same, on a mac sidecar whose confirmed path lets the first token out before its probe.
      goal: `(d) the same, POTLUCK_PATH_CONFIRMED_MS=${PathConfirmLimits.onMs}`,
      target: "≤ +2 ms",
      values: paired(tiny, confirmedName, meshFloorName, (a, b) => a.ttftMs - b.ttftMs),
      met: (v: number) => v <= 2,
      unit: "ms",
    },
  ]
    .filter((g) => g.values.length > 0)
    .map((g) => ({ ...g, median: median(g.values) }));
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  process.stdout.write(
    `\nissue 19's goals, same run, per-round pairs (median, range), load average at the end ${load}\n`,
  );
  for (const g of goals) {
    const digits = g.unit === "ms" ? 1 : 3;
    const value = g.unit === "ms" ? `${signed(g.median)} ms` : `${g.median.toFixed(digits)} ×`;
    process.stdout.write(
      `${g.goal.padEnd(78)} ${value.padStart(10)}  (${range(g.values, digits)})  goal ${g.target}: ${g.met(g.median) ? "met" : "missed"}\n`,
    );
  }
  return goals.map(({ met, ...g }) => ({ ...g, met: met(g.median) }));
}

function signed(ms: number): string {
  return `${ms >= 0 ? "+" : ""}${ms.toFixed(1)}`;
}

function range(values: readonly number[], digits: number): string {
  if (values.length === 0) return "—";
  return `${Math.min(...values).toFixed(digits)} … ${Math.max(...values).toFixed(digits)}`;
}

function writeResults(result: Record<string, unknown>): void {
  mkdirSync(dirname(resultsFile), { recursive: true });
  writeFileSync(
    resultsFile,
    JSON.stringify({ at: new Date().toISOString(), threads, loadAverage: loadavg(), ...result }, null, 2),
  );
  process.stdout.write(`\nwrote ${resultsFile}\n`);
}

await main();
