// Bench: how long diagnostics takes to name each failure from the moment it starts (median over
// repeats), and what a healthy full check costs, in the lab (issue 8). Goals: a firewall block
// named within 2 s of its time-to-visible; a healthy full check ≤ 50 ms.
//
//   node --import tsx tools/bench/diagnostics/main.ts [--repeats 3] [--faults mullvad,mtu,...]
//
// mac runs the real probes (tools/bench/diagnostics/path-check.ts) against linux's real sidecar
// over the WireGuard mesh, checking every 250 ms; the lab injects each fault on linux and the
// time is taken from the injection to the first report whose first failure is the expected layer
// (same machine clock). The baseline in the same run is one plain GET /health over the mesh.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { LayerCode } from "@potluck/protocol";
import { TimeToVisibleMs } from "@potluck/diagnostics";
import { benchFlags } from "../common/args.js";
import { pollUntil } from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { createDiagnosticsLab, parseCheckLines, type DiagnosticsLab } from "./lab-setup.js";

const resultsFile = join(repoRoot, "tools/bench/results/diagnostics.json");
/** A fault not named within this long counts as a miss, not a hang. */
const nameTimeoutMs = 90_000;
const repeatsMax = 50;

interface Fault {
  name: string;
  layer: LayerCode;
  failures: string[];
  timeToVisibleMs: number;
  inject(d: DiagnosticsLab): Promise<() => Promise<void>>;
}

const faults: Fault[] = [
  {
    name: "mullvad",
    layer: "data-plane",
    failures: ["firewall-drop"],
    timeToVisibleMs: TimeToVisibleMs.dataPlane,
    inject: (d) => d.lab.faults.mullvadKillswitch("linux"),
  },
  {
    name: "tailscale",
    layer: "data-plane",
    failures: ["firewall-drop"],
    timeToVisibleMs: TimeToVisibleMs.dataPlane,
    inject: (d) => d.lab.faults.tailscaleCgnatDrop("linux"),
  },
  {
    name: "mtu",
    layer: "data-plane",
    failures: ["mtu-blackhole"],
    timeToVisibleMs: TimeToVisibleMs.dataPlane,
    inject: (d) => d.lab.faults.mtuBlackhole("linux"),
  },
  {
    name: "sidecar-stopped",
    layer: "data-plane",
    failures: ["connection-refused"],
    timeToVisibleMs: TimeToVisibleMs.dataPlane,
    inject: async (d) => {
      await d.lab.faults.stopProcesses("linux");
      return async () => void (await d.startSidecar(d.linux));
    },
  },
  {
    name: "powered-off",
    layer: "tunnel",
    failures: ["peer-silent", "no-handshake"],
    timeToVisibleMs: TimeToVisibleMs.tunnel,
    inject: async (d) => {
      const undo = await d.lab.faults.powerOff("linux");
      return async () => {
        await undo();
        await d.startSidecar(d.linux);
      };
    },
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round = (x: number) => Math.round(x * 10) / 10;

async function healthyCost(d: DiagnosticsLab) {
  const out = await d.mac.exec(d.checkArgv({ watchMs: 15_000, intervalMs: 100, baseline: 200 }), {
    cwd: repoRoot,
    timeoutMs: 180_000,
  });
  const baselineMs = (
    JSON.parse(out.stdout.split("\n").find((l) => l.startsWith('{"baselineMs"')) ?? '{"baselineMs":[]}') as {
      baselineMs: number[];
    }
  ).baselineMs;
  // The first check generates a token; later ones reuse it for 30 s (the steady state a dashboard sees).
  const steady = parseCheckLines(out.stdout)
    .slice(1)
    .filter((l) => l.report.usable)
    .map((l) => l.durationMs);
  const fresh = parseCheckLines(
    (
      await d.mac.exec(d.checkArgv({ watchMs: 15_000, intervalMs: 100, fresh: true }), {
        cwd: repoRoot,
        timeoutMs: 180_000,
      })
    ).stdout,
  )
    .slice(1)
    .filter((l) => l.report.usable)
    .map((l) => l.durationMs);
  return {
    baselineHealthMedianMs: round(median(baselineMs.slice(20))),
    steadyCheckMedianMs: round(median(steady)),
    steadyChecks: steady.length,
    fullCheckMedianMs: round(median(fresh)),
    fullChecks: fresh.length,
    steadyOverBaseline: round(median(steady) / median(baselineMs.slice(20))),
  };
}

async function timeToName(
  d: DiagnosticsLab,
  fault: Fault,
): Promise<{ namedMs: number | null; failure: string | null }> {
  const proc = d.mac.spawn(
    "bench-watch",
    d.checkArgv({ watchMs: nameTimeoutMs + 60_000, intervalMs: 250, until: fault.layer }),
    { cwd: repoRoot },
  );
  const started = await pollUntil(() => parseCheckLines(proc.output()).some((l) => l.report.usable), {
    timeoutMs: 120_000,
    intervalMs: 50,
  });
  if (!started) {
    await proc.stop();
    throw new Error(`${fault.name}: the path was not healthy before the fault: ${proc.output().slice(-1500)}`);
  }
  const injectedAt = Date.now();
  const undo = await fault.inject(d);
  const finished = await Promise.race([
    proc.exited.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), nameTimeoutMs)),
  ]);
  if (!finished) await proc.stop();
  await undo();
  const named = parseCheckLines(proc.output()).find(
    (l) => l.atMs >= injectedAt && l.report.firstFailure === fault.layer,
  );
  const failure = named?.report.layers.find((l) => l.code === fault.layer)?.failure ?? null;
  await waitHealthy(d);
  return { namedMs: named === undefined ? null : named.atMs - injectedAt, failure };
}

async function waitHealthy(d: DiagnosticsLab): Promise<void> {
  if (!(await d.linuxReady())) throw new Error("linux did not come back after a fault");
  const lines = await d.check({ until: "usable", watchMs: 90_000 });
  if (lines.at(-1)?.report.usable !== true) throw new Error("the path did not become usable again");
}

async function main(): Promise<void> {
  const { flags } = benchFlags(process.argv.slice(2), { strings: ["faults", "repeats"], positionals: false });
  const repeats = Math.min(Number(flags.get("repeats") ?? 3), repeatsMax);
  const only = flags.get("faults")?.split(",");
  const d = await createDiagnosticsLab();
  try {
    await waitHealthy(d);
    const healthy = await healthyCost(d);
    const rows = [];
    for (const fault of faults.filter((f) => only === undefined || only.includes(f.name))) {
      const samples: number[] = [];
      let misses = 0;
      const wrong: string[] = [];
      for (let i = 0; i < repeats; i++) {
        const { namedMs, failure } = await timeToName(d, fault);
        process.stderr.write(
          `${fault.name} #${i + 1}: ${namedMs === null ? "not named" : `${namedMs} ms`} (${failure ?? "-"})\n`,
        );
        if (namedMs === null) misses++;
        else samples.push(namedMs);
        if (failure !== null && !fault.failures.includes(failure)) wrong.push(failure);
      }
      const medianMs = median(samples);
      rows.push({
        fault: fault.name,
        layer: fault.layer,
        expected: fault.failures.join("|"),
        repeats,
        misses,
        misnamed: wrong,
        timeToVisibleMs: fault.timeToVisibleMs,
        namedMedianMs: Math.round(medianMs),
        namedMaxMs: samples.length ? Math.round(Math.max(...samples)) : null,
        overTimeToVisibleMs: Math.round(medianMs - fault.timeToVisibleMs),
      });
    }
    console.log("\nhealthy full check (lab, mac → linux over potluck0)");
    console.table([healthy]);
    console.log("time to name each failure from its injection (median over repeats)");
    console.table(rows);
    mkdirSync(dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, `${JSON.stringify({ at: new Date().toISOString(), healthy, faults: rows }, null, 2)}\n`);
    console.log(`wrote ${resultsFile}`);
  } finally {
    await d.teardown();
  }
}

await main();
