// Bench (issue 10, step 5): a person on mac sends a prompt again and again while linux's VPN
// "reconnects" (its killswitch table is rebuilt and our accept rules vanish). How long do the
// prompts fail? Goal: at most the fw-watcher's interval + 1 s, every time.
//
//   node --import tsx tools/bench/household/main.ts [--reconnects 5] [--interval 1] [--gap-ms 100]
//
// Runs the whole household lab (hub, mac, linux, windows; real sidecars, coordinator, NATS,
// wireguard-go, nftables), a fw-watcher on linux with the given tick, and a prompt loop inside mac
// against mac's own sidecar (which routes to linux). Baseline in the same run: the same loop over
// the same length of time with no reconnect — its failures (expected none) and prompt latency
// tell what the loop sees when nothing is wrong. Outage = from the table rebuild to the end of the
// last failed prompt before service returned (0 when no prompt failed).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHousehold, HouseholdPorts, householdModel } from "../../src/demo/household-lab.js";
import { outageAfter, startPromptLoop, type Attempt } from "../../src/demo/prompt-loop.js";
import { pollUntil } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { benchFlags } from "../common/args.js";
import { median } from "../common/stats.js";

const resultsFile = join(repoRoot, "tools/bench/results/household.json");
const reconnectsMax = 50;
/** Time each reconnect is watched for; long enough for a slow reapply to show as a long outage. */
const settleMs = 8_000;

interface Phase {
  name: string;
  prompts: number;
  failed: number;
  latencyP50Ms: number;
  /** The slowest prompt: a prompt caught by the reconnect can stall (TCP retransmits) instead of failing. */
  latencyMaxMs: number;
  outagesMs: number[];
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), {
    strings: ["reconnects", "interval", "gap-ms"],
    positionals: false,
  });
  const reconnects = Math.min(Number(flags.get("reconnects") ?? "5"), reconnectsMax);
  const intervalS = Number(flags.get("interval") ?? "1");
  const gapMs = Number(flags.get("gap-ms") ?? "100");
  const goalMs = intervalS * 1000 + 1000;
  process.stdout.write(
    `household bench: ${reconnects} reconnects, fw-watcher interval ${intervalS} s, a prompt every ${gapMs} ms after the last answer\n`,
  );
  const h = await createHousehold((m) => process.stdout.write(`  ${m}\n`));
  try {
    const linux = h.host("linux");
    const undo = await h.lab.faults.mullvadKillswitch("linux");
    const watcher = await h.startFwWatcher(linux, intervalS, { POTLUCK_FW_PORT: "0" });
    const reapplied = () =>
      watcher
        .output()
        .split("\n")
        .filter((l) => l.includes("accept rule(s) reapplied")).length;
    try {
      if (!(await pollUntil(() => reapplied() >= 1, { timeoutMs: 60_000 })))
        throw new Error(`fw-watcher never reapplied: ${watcher.output().slice(-2000)}`);
      const loop = () => startPromptLoop(h.host("mac"), { port: HouseholdPorts.sidecar, model: householdModel, gapMs });
      // Warm the route (first prompt pays for connections and probes) before anything is timed.
      const warm = loop();
      const served = await pollUntil(() => warm.attempts().some((a) => a.ok && a.servedBy === "linux"), {
        timeoutMs: 120_000,
        intervalMs: 500,
      });
      await warm.stop();
      if (!served) throw new Error("mac's prompts never reached linux");

      const baseline = loop();
      await sleep(settleMs * reconnects);
      const quiet = phase("baseline (no reconnect)", await baseline.stop(), []);

      const faulted = loop();
      const times: number[] = [];
      for (let i = 0; i < reconnects; i++) {
        await sleep(settleMs / 2 + Math.random() * intervalS * 1000); // a random phase against the tick
        times.push(Date.now());
        const seen = reapplied();
        await h.lab.faults.vpnReconnect("linux", "mullvad");
        if (!(await pollUntil(() => reapplied() > seen, { timeoutMs: 60_000 })))
          throw new Error(`reconnect ${i + 1}: rules not reapplied within 60 s`);
        await sleep(settleMs / 2);
      }
      const attempts = await faulted.stop();
      const outages = times.map(
        (t, i) =>
          outageAfter(
            attempts.filter((a) => a.start < (times[i + 1] ?? Infinity)),
            t,
          ).outageMs,
      );
      const withFault = phase(`${reconnects} VPN reconnects`, attempts, outages);
      const rows = [quiet, withFault];
      printTable(rows, goalMs);
      mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
      writeFileSync(
        resultsFile,
        `${JSON.stringify({ bench: "household", at: new Date().toISOString(), intervalS, gapMs, goalMs, rows }, null, 2)}\n`,
      );
      process.stdout.write(`wrote ${resultsFile}\n`);
      if (outages.some((o) => o > goalMs)) process.exitCode = 1;
    } finally {
      await watcher.stop();
      await undo();
    }
  } finally {
    await h.teardown();
  }
}

function phase(name: string, attempts: Attempt[], outagesMs: number[]): Phase {
  const latencies = attempts.filter((a) => a.ok).map((a) => a.end - a.start);
  return {
    name,
    prompts: attempts.length,
    failed: attempts.filter((a) => !a.ok).length,
    latencyP50Ms: median(latencies),
    latencyMaxMs: Math.max(...latencies),
    outagesMs,
  };
}

function printTable(rows: Phase[], goalMs: number): void {
  const line = (cells: Array<string | number>) => `| ${cells.join(" | ")} |\n`;
  process.stdout.write(
    `\n${line(["phase", "prompts", "failed", "prompt p50", "slowest prompt", "outage median", "outage max", `goal (≤ ${goalMs} ms)`])}`,
  );
  process.stdout.write(line(["---", "---", "---", "---", "---", "---", "---", "---"]));
  for (const r of rows) {
    const has = r.outagesMs.length > 0;
    process.stdout.write(
      line([
        r.name,
        r.prompts,
        r.failed,
        `${r.latencyP50Ms.toFixed(1)} ms`,
        `${r.latencyMaxMs.toFixed(0)} ms`,
        has ? `${median(r.outagesMs)} ms` : "—",
        has ? `${Math.max(...r.outagesMs)} ms` : "—",
        has
          ? `${r.outagesMs.filter((o) => o <= goalMs).length}/${r.outagesMs.length} within`
          : r.failed === 0
            ? "no failures"
            : `${r.failed} failures with no fault`,
      ]),
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((error: unknown) => {
  process.stderr.write(`household bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
