// Bench (issue 21): what the hub relay costs a prompt, and how long a blocked direct path takes to
// fail over to the hub and back. Goal: through the hub ≥ 0.95 × direct tokens/s, first token
// ≤ direct + 2 ms; both measured in the same run, on the same machines, alternating.
//
//   node --import tsx tools/bench/relay/main.ts [--repeats 3] [--prompts 5] [--max-tokens 64]
//
// The relay lab (lab.ts: hub, alpha with no model, beta with the tiny TEST model; real sidecars,
// coordinator, NATS, wireguard-go, nftables, the mesh agent's direct-then-hub loop). Each repeat:
// `prompts` streamed completions from alpha's sidecar (served by beta) direct; UDP between alpha
// and beta blocked, timed until both carry each other's address on the hub's peer; the same
// prompts through the hub; the block lifted, timed until both are direct again. Per repeat the
// medians of its prompts; reported, the median over repeats of each, and of the per-repeat ratios.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunTiming } from "../inference/client.js";
import { pollUntil } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { benchFlags } from "../common/args.js";
import { fmt, median } from "../common/stats.js";
import { createRelayLab, relayModel, sidecarPort, type RelayLab } from "./lab.js";

const resultsFile = join(repoRoot, "tools/bench/results/relay.json");
const client = join(repoRoot, "tools/bench/inference/client.ts");
const repeatsMax = 20;
const promptsMax = 50;
/** Fail-over: the agent's silence limit (55 s) and a poll on a loaded box; past this the repeat fails. */
const failOverMaxMs = 180_000;
/** Back: its retry interval (20 s) and a poll, with room. */
const failBackMaxMs = 120_000;
const goal = { tokensRatioMin: 0.95, firstTokenAddedMsMax: 2 };

interface Phase {
  firstTokenMs: number;
  tokensPerS: number;
}

interface Repeat {
  direct: Phase;
  relayed: Phase;
  failOverMs: number;
  failBackMs: number;
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), {
    strings: ["repeats", "prompts", "max-tokens"],
    positionals: false,
  });
  const repeats = Math.min(Number(flags.get("repeats") ?? "3"), repeatsMax);
  const prompts = Math.min(Number(flags.get("prompts") ?? "5"), promptsMax);
  const maxTokens = Number(flags.get("max-tokens") ?? "64");
  const say = (m: string) => process.stdout.write(`${m}\n`);
  say(`relay bench: ${repeats} repeats × ${prompts} prompts of ${maxTokens} tokens, direct vs through the hub`);
  const r = await createRelayLab((m) => say(`  ${m}`));
  try {
    await r.hub.waitOnline(["hub", "alpha", "beta"], 240_000);
    if ((await r.waitPath("direct", 240_000)) === null) throw new Error("alpha and beta never went direct");
    await warm(r);
    await stream(r, 2);
    const rows: Repeat[] = [];
    for (let i = 0; i < repeats; i++) {
      const direct = await stream(r, prompts, maxTokens);
      // Doctor on the direct path first, so its sidecar has a direct round trip to price the relay against.
      await r.doctor(r.alpha, "beta");
      const undo = await r.blockDirect();
      let failOverMs: number | null;
      let relayed: Phase;
      try {
        failOverMs = await r.waitPath("hub", failOverMaxMs);
        if (failOverMs === null) throw new Error(`repeat ${i + 1}: no fail-over within ${failOverMaxMs / 1000} s`);
        relayed = await stream(r, prompts, maxTokens);
        const doctor = await r.doctor(r.alpha, "beta");
        say(`  doctor on alpha: ${doctor.layers.find((l) => l.code === "path")?.message ?? "no path layer"}`);
      } finally {
        await undo();
      }
      const failBackMs = await r.waitPath("direct", failBackMaxMs);
      if (failBackMs === null) throw new Error(`repeat ${i + 1}: not direct again within ${failBackMaxMs / 1000} s`);
      rows.push({ direct, relayed, failOverMs, failBackMs });
      say(
        `  repeat ${i + 1}: direct ${fmt(direct.tokensPerS)} tok/s, ${fmt(direct.firstTokenMs)} ms; hub ${fmt(relayed.tokensPerS)} tok/s, ${fmt(relayed.firstTokenMs)} ms; over ${failOverMs} ms, back ${failBackMs} ms`,
      );
    }
    report(rows, { repeats, prompts, maxTokens });
  } finally {
    await r.teardown();
  }
}

/**
 * Until a prompt from alpha is served by beta: the model loaded there (the bench's client reads
 * only data events, not the loading comments a first prompt streams) and the route known.
 */
async function warm(r: RelayLab): Promise<void> {
  let last = "";
  const served = await pollUntil(
    async () => {
      const res = await r.cli(r.alpha, ["ask", "--model", relayModel, "--max-tokens", "4", "warm up"]);
      last = res.stdout + res.stderr;
      return res.code === 0 && /served by beta/.test(res.stdout);
    },
    { timeoutMs: 300_000, intervalMs: 2_000 },
  );
  if (!served) throw new Error(`alpha's prompts never reached beta: ${last.slice(-1000)}`);
}

/** `count` streamed completions from alpha's sidecar, each served by beta; the medians of the count. */
async function stream(r: RelayLab, count: number, maxTokens = 64): Promise<Phase> {
  const res = await r.alpha.exec(
    [
      process.execPath,
      "--import",
      "tsx",
      client,
      "--url",
      `http://127.0.0.1:${sidecarPort}`,
      "--model",
      relayModel,
      "--max-tokens",
      String(maxTokens),
      "--repeats",
      String(count),
      "--warmup",
      "1",
    ],
    { cwd: repoRoot, timeoutMs: 600_000 },
  );
  if (res.code !== 0) throw new Error(`streaming from alpha: ${res.stderr.slice(-1000)}`);
  const runs = res.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as RunTiming);
  const stray = runs.find((run) => run.servedBy !== "beta");
  if (stray !== undefined) throw new Error(`a prompt was served by ${stray.servedBy}, not beta`);
  return {
    firstTokenMs: median(runs.map((run) => run.ttftMs)),
    tokensPerS: median(runs.map((run) => (run.completionTokens - 1) / ((run.totalMs - run.ttftMs) / 1000))),
  };
}

function report(rows: Repeat[], settings: Record<string, number>): void {
  const tokensRatio = median(rows.map((row) => row.relayed.tokensPerS / row.direct.tokensPerS));
  const firstTokenAddedMs = median(rows.map((row) => row.relayed.firstTokenMs - row.direct.firstTokenMs));
  const load = readFileSync("/proc/loadavg", "utf8").trim();
  const line = (cells: Array<string | number>) => `| ${cells.join(" | ")} |\n`;
  const cells = [
    ["direct tokens/s", fmt(median(rows.map((x) => x.direct.tokensPerS)))],
    ["hub tokens/s", fmt(median(rows.map((x) => x.relayed.tokensPerS)))],
    [`hub ÷ direct tokens/s (goal ≥ ${goal.tokensRatioMin})`, tokensRatio.toFixed(3)],
    ["direct first token", `${fmt(median(rows.map((x) => x.direct.firstTokenMs)))} ms`],
    ["hub first token", `${fmt(median(rows.map((x) => x.relayed.firstTokenMs)))} ms`],
    [`hub − direct first token (goal ≤ +${goal.firstTokenAddedMsMax} ms)`, `${fmt(firstTokenAddedMs)} ms`],
    ["blocked → on the hub (both machines)", `${fmt(median(rows.map((x) => x.failOverMs)) / 1000)} s`],
    ["lifted → direct again (both machines)", `${fmt(median(rows.map((x) => x.failBackMs)) / 1000)} s`],
  ];
  process.stdout.write(`\n${line(["measure", "median over repeats"])}${line(["---", "---"])}`);
  for (const [name, value] of cells) process.stdout.write(line([name ?? "", value ?? ""]));
  process.stdout.write(`load (1/5/15 min): ${load}\n`);
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  const result = {
    bench: "relay",
    at: new Date().toISOString(),
    load,
    settings,
    goal,
    tokensRatio,
    firstTokenAddedMs,
    rows,
  };
  writeFileSync(resultsFile, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote ${resultsFile}\n`);
  if (tokensRatio < goal.tokensRatioMin || firstTokenAddedMs > goal.firstTokenAddedMsMax) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`relay bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
