// Bench: how long after a VPN reconnect (its table deleted and recreated, our rules gone) the
// firewall watcher has the accept rules back. Goal (issue 7): at most interval + 1 s, every time.
//
//   node --import tsx tools/bench/firewall/main.ts [--reconnects 20] [--intervals 1,5]
//
// Runs the real `potluck-fw-watcher --watch` inside a throwaway network namespace with a
// Mullvad-style default-drop table, recreates that table N times at a random phase relative to
// the watcher's tick, and takes "restored" from the watcher's own log line (pino ms clock, the
// same clock as this process). The same run measures the floor: one direct reapply (nft list +
// nft insert) with no watcher in the way, so the table shows how much is tick wait.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../../src/lib/repo.js";
import { run, runOk } from "./nft.js";
import { benchFlags } from "../common/args.js";
import { median } from "../common/stats.js";

const bin = join(repoRoot, "bin/potluck-fw-watcher.mjs");
const resultsFile = join(repoRoot, "tools/bench/results/firewall.json");
/** Bounds: a reconnect whose rules are not back within this long counts as a failure, not a hang. */
const restoreTimeoutMs = 60_000;
const reconnectsMax = 1_000;

const mullvadTable = `table inet mullvad {
  chain input { type filter hook input priority 0; policy drop; iif "lo" accept; }
  chain output { type filter hook output priority 0; policy drop; oif "lo" accept; }
}
`;

interface Row {
  intervalS: number;
  reconnects: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  goalMs: number;
  maxOverGoal: number;
  withinGoal: number;
  floorMedianMs: number;
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), { strings: ["reconnects", "intervals"], positionals: false });
  const reconnects = Math.min(Number(flags.get("reconnects") ?? "20"), reconnectsMax);
  const intervals = (flags.get("intervals") ?? "1,5")
    .split(",")
    .map(Number)
    .filter((n) => n > 0);
  const rows: Row[] = [];
  for (const intervalS of intervals) rows.push(await benchInterval(intervalS, reconnects));
  printTable(rows);
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify({ bench: "firewall", at: new Date().toISOString(), rows }, null, 2)}\n`);
  process.stdout.write(`wrote ${resultsFile}\n`);
  if (rows.some((r) => r.withinGoal < r.reconnects)) process.exitCode = 1;
}

async function benchInterval(intervalS: number, reconnects: number): Promise<Row> {
  const ns = `pfwb-${randomBytes(4).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), `${ns}-`));
  const nftIn = (args: string[]) => ["ip", "netns", "exec", ns, "nft", ...args];
  const load = (name: string, script: string) => {
    const file = join(dir, name);
    writeFileSync(file, script);
    return runOk(`loading ${name}`, nftIn(["-f", file]));
  };
  await runOk("creating the namespace", ["ip", "netns", "add", ns]);
  let watcher: ChildProcess | undefined;
  try {
    await runOk("bringing lo up", ["ip", "-n", ns, "link", "set", "lo", "up"]);
    await load("table.nft", mullvadTable);
    const floorMedianMs = await measureFloor(nftIn, load);
    const log = startWatcher(ns, intervalS, (w) => (watcher = w));
    await log.waitFor(1);
    const latencies: number[] = [];
    for (let i = 0; i < reconnects; i++) {
      // A random phase against the watcher's tick, so the numbers cover the whole interval.
      await sleep(Math.random() * intervalS * 1000);
      const seen = log.reapplied.length;
      await load("reconnect.nft", `add table inet mullvad\ndelete table inet mullvad\n${mullvadTable}`);
      const recreatedAt = Date.now();
      const restoredAt = await log.waitFor(seen + 1);
      const own = (await run(nftIn(["-j", "list", "ruleset"]))).stdout.split("potluck-fw-watcher:potluck0").length - 1;
      if (own !== 2) throw new Error(`after reconnect ${i + 1}: expected 2 watcher rules, found ${own}`);
      latencies.push(Math.max(0, restoredAt - recreatedAt));
    }
    return summarize(intervalS, latencies, floorMedianMs);
  } finally {
    watcher?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    await run(["ip", "netns", "del", ns]);
  }
}

/** The cost of one reapply with no tick to wait for: list the ruleset, insert two rules. */
async function measureFloor(
  nftIn: (args: string[]) => string[],
  load: (name: string, script: string) => Promise<unknown>,
): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await runOk("listing", nftIn(["-j", "list", "ruleset"]));
    await load(
      "floor.nft",
      'insert rule inet mullvad input iifname "potluck0" accept\ninsert rule inet mullvad output oifname "potluck0" accept\n',
    );
    samples.push(performance.now() - t0);
    await load("reset.nft", `add table inet mullvad\ndelete table inet mullvad\n${mullvadTable}`);
  }
  return median(samples);
}

function startWatcher(ns: string, intervalS: number, keep: (w: ChildProcess) => void) {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, bin, "--watch"], {
    env: {
      ...process.env,
      POTLUCK_FW_WATCH_INTERVAL: String(intervalS),
      POTLUCK_FW_PORT: "0",
      POTLUCK_MACHINE: "bench",
      POTLUCK_NATS_PREFIX: `b${randomBytes(4).toString("hex")}`,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  keep(child);
  const reapplied: number[] = [];
  let buffer = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.includes('"accept rule(s) reapplied"')) continue;
      reapplied.push((JSON.parse(line) as { time: number }).time);
    }
  });
  return {
    reapplied,
    async waitFor(count: number): Promise<number> {
      const deadline = Date.now() + restoreTimeoutMs;
      while (reapplied.length < count) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`rules not restored within ${restoreTimeoutMs} ms (watcher exit ${String(child.exitCode)})`);
        await sleep(10);
      }
      return reapplied[count - 1] as number;
    },
  };
}

function summarize(intervalS: number, latencies: number[], floorMedianMs: number): Row {
  const sorted = [...latencies].sort((a, b) => a - b);
  const goalMs = intervalS * 1000 + 1000;
  const maxMs = sorted[sorted.length - 1] ?? 0;
  return {
    intervalS,
    reconnects: latencies.length,
    medianMs: Math.round(median(sorted)),
    p90Ms: Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))] ?? 0),
    maxMs: Math.round(maxMs),
    goalMs,
    maxOverGoal: Number((maxMs / goalMs).toFixed(2)),
    withinGoal: latencies.filter((l) => l <= goalMs).length,
    floorMedianMs: Math.round(floorMedianMs),
  };
}

function printTable(rows: Row[]): void {
  const head = [
    "interval s",
    "reconnects",
    "median ms",
    "p90 ms",
    "max ms",
    "goal ms",
    "max/goal",
    "within goal",
    "floor ms",
  ];
  const body = rows.map((r) =>
    [
      r.intervalS,
      r.reconnects,
      r.medianMs,
      r.p90Ms,
      r.maxMs,
      r.goalMs,
      r.maxOverGoal,
      `${r.withinGoal}/${r.reconnects}`,
      r.floorMedianMs,
    ].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  for (const line of [head, ...body])
    process.stdout.write(`${line.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ")}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

await main();
