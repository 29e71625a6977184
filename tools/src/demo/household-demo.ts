import { renderReport } from "@potluck/diagnostics";
import { MemorySearchResponse, type DiagnosticsReport } from "@potluck/protocol";
import { pollUntil } from "../lab/index.js";
import { createHousehold, HouseholdPorts, householdModel, type Household } from "./household-lab.js";
import { outageAfter, startPromptLoop } from "./prompt-loop.js";

/** A fault must outlast its time-to-visible before doctor shows it; generous on a slow machine. */
const faultVisibleMs = 120_000;

type Print = (text: string) => void;

/**
 * `potluck lab demo`: the Sunday of field note 1, step by step on a fresh lab, printing what it
 * does and what `potluck doctor` and `potluck ask` say on mac. The lab is torn down at the end, on
 * failure, and on Ctrl-C (the lab's own signal hooks).
 */
export async function runHouseholdDemo(print: Print): Promise<void> {
  // Another SIGINT listener in the process (tsx's) makes the lab's own signal hook stand aside, so
  // the demo exits itself: the lab's exit hook then removes every namespace and process it made.
  const interrupted = (signal: NodeJS.Signals) => {
    print(`\n${signal}: tearing the lab down`);
    process.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, interrupted);
  const step = (n: number, title: string) => print(`\n=== ${n}. ${title}\n`);
  step(1, "three machines join a coordinator on the home LAN");
  const h = await createHousehold((m) => print(`  ${m}`));
  try {
    const machines = (await h.roster()).machines.map((m) => `${m.name} ${m.meshIp} ${m.state}`);
    print(`  roster: ${machines.join(", ")}`);

    step(2, "potluck ask on mac (no model) runs on linux");
    await waitForDoctor(h, (r) => r.usable);
    await ask(h, print, "Why is the sky blue?");

    step(3, "a Mullvad-style killswitch appears on linux");
    const watcher = await h.startFwWatcher(h.host("linux"), 3600);
    const undoKillswitch = await h.lab.faults.mullvadKillswitch("linux");
    try {
      print(`  roster says linux is ${(await h.roster()).machines.find((m) => m.name === "linux")?.state}`);
      print("  potluck doctor linux (on mac), once the failure has outlasted its time-to-visible:");
      print(indent(renderReport(await waitForDoctor(h, (r) => named(r, "firewall-drop")))));
      await ask(h, print, "Is anyone there?");

      step(4, "with consent, the fix: linux's fw-watcher reapplies its accept rules");
      const fix = await h
        .host("linux")
        .exec(
          [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            '{"action":"fw-reapply","consent":true}',
            `http://127.0.0.1:${HouseholdPorts.sidecar}/diagnostics/fix`,
          ],
          { timeoutMs: 60_000 },
        );
      print(`  POST /diagnostics/fix on linux: ${fix.stdout}`);
      print(indent(renderReport(await waitForDoctor(h, (r) => r.usable))));
      await ask(h, print, "And now?");
    } finally {
      await watcher.stop();
      await undoKillswitch();
    }

    step(5, "the VPN reconnects (its table is rebuilt); a watcher with a 1 s tick restores the rules");
    const undoAgain = await h.lab.faults.mullvadKillswitch("linux");
    const ticking = await h.startFwWatcher(h.host("linux"), 1, { POTLUCK_FW_PORT: "0" });
    const reapplied = () =>
      ticking
        .output()
        .split("\n")
        .filter((l) => l.includes("accept rule(s) reapplied")).length;
    const loop = startPromptLoop(h.host("mac"), { port: HouseholdPorts.sidecar, model: householdModel });
    try {
      await pollUntil(() => reapplied() >= 1 && loop.attempts().some((a) => a.ok), { timeoutMs: 60_000 });
      print("  a prompt loop runs on mac; now the reconnect");
      const at = Date.now();
      await h.lab.faults.vpnReconnect("linux", "mullvad");
      const restored = await pollUntil(() => reapplied() >= 2, { timeoutMs: 60_000 });
      await pollUntil(() => loop.attempts().filter((a) => a.ok && a.start > at).length >= 3, {
        timeoutMs: faultVisibleMs,
      });
      const attempts = await loop.stop();
      const { outageMs, spans } = outageAfter(attempts, at);
      print(`  fw-watcher ${restored ? "reapplied the rules after the reconnect" : "did NOT reapply within 60 s"}`);
      print(
        `  the loop sent ${attempts.length} prompts; ${spans.reduce((n, s) => n + s.failures, 0)} failed, outage ${outageMs} ms (goal ≤ 2000 ms)`,
      );
    } finally {
      await loop.stop();
      await ticking.stop();
      await undoAgain();
    }

    step(6, "an MTU black hole between mac and linux");
    const undoMtu = await h.lab.faults.mtuBlackhole("linux");
    try {
      print(indent(renderReport(await waitForDoctor(h, (r) => named(r, "mtu-blackhole")))));
      await ask(h, print, "Too big?");
      print("  windows gets the model too (its sidecar restarts with the default TEST model)");
      await h.restartSidecar("windows", { POTLUCK_MODELS: "" });
      await ask(h, print, "Anyone else?");
    } finally {
      await undoMtu();
    }

    step(7, "peer memory: windows opts in, then out, without a restart");
    await memoryStep(h, print);
    print("\nDone. Tearing the lab down.");
  } finally {
    await h.teardown();
  }
}

/** A failed layer with this named failure: a fresh fault can first read as another one for a moment. */
function named(report: DiagnosticsReport, failure: string): boolean {
  return report.layers.some((l) => l.status === "failed" && l.failure === failure);
}

async function waitForDoctor(h: Household, done: (r: DiagnosticsReport) => boolean): Promise<DiagnosticsReport> {
  let report: DiagnosticsReport | undefined;
  await pollUntil(
    async () => {
      report = await h.doctor("linux").catch(() => undefined);
      return report !== undefined && done(report);
    },
    { timeoutMs: faultVisibleMs, intervalMs: 1_000 },
  );
  if (report === undefined) throw new Error("potluck doctor linux printed no report");
  return report;
}

async function ask(h: Household, print: Print, prompt: string): Promise<void> {
  print(`  $ potluck ask "${prompt}"   (on mac)`);
  const res = await h.cli(h.host("mac"), ["ask", "--model", householdModel, "--max-tokens", "16", prompt]);
  print(indent((res.stdout + res.stderr).trim()));
}

async function memoryStep(h: Household, print: Print): Promise<void> {
  const [mac, windows] = [h.host("mac"), h.host("windows")];
  const memory = async (host: typeof mac, ...args: string[]) => (await h.cli(host, ["memory", ...args])).stdout;
  await memory(windows, "add", "The home router admin page is at 192.168.1.1", "--project", "home");
  await memory(mac, "add", "The mac mini backs up to the router share every night", "--project", "home");
  const search = async () =>
    MemorySearchResponse.parse(
      JSON.parse(await memory(mac, "search", "router admin page", "--project", "home", "--fleet", "--json")),
    );
  const show = (r: MemorySearchResponse) => {
    print(`  machines: ${r.machines.map((m) => `${m.machine}=${m.status}`).join(", ")}`);
    for (const hit of r.hits.slice(0, 3)) print(`    [${hit.machine}] ${hit.record.text}`);
  };
  await memory(windows, "share", "on");
  print("  windows: potluck memory share on; mac: potluck memory search --fleet");
  show(await search());
  await memory(windows, "share", "off");
  print("  windows: potluck memory share off; mac searches again");
  show(await search());
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
