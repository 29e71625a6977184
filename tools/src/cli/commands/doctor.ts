import { hostname } from "node:os";
import { createInterface } from "node:readline/promises";
import {
  Defaults,
  DiagnosticsOverview,
  DiagnosticsReport,
  FwReapplyResult,
  MachineName,
  machineNameFromHost,
  type LayerResult,
} from "@potluck/protocol";
import { Diagnostics, httpLocalProbe, renderReport, type PeerClient, type TunnelReader } from "@potluck/diagnostics";
import { CliError, type Command } from "../command.js";
import { doctorHub } from "../hub/doctor-hub.js";

const usage = `Usage: potluck doctor [MACHINE] [--json] [--fix [--yes]] [--model M] [--port N]
       potluck doctor --hub [--json]

Asks the local sidecar whether a prompt can reach MACHINE's model and stream a token back right
now, layer by layer: local sidecar, coordinator, roster, tunnel (WireGuard handshake on
${Defaults.interfaceName}), path, peer data plane (small and ${1400}-byte probes), capabilities,
model runtime, first token. The first failing layer is named with its fix; layers behind it are
"suppressed". A path relayed via the hub (the direct one is blocked) is a state, not a failure:
the path layer says so with the round trip the hub adds. Without MACHINE, checks every path (this
machine and each roster peer).

A failure the sidecar has only just seen is confirmed before it is reported (a few seconds at
most), so a passing flap is not called an outage.

  --json      print the report(s) as JSON
  --fix       when the fix is the firewall watcher's reapply, ask, then ask the fw-watcher
              (127.0.0.1:POTLUCK_FW_PORT, default ${Defaults.fwWatcherPort}) to reinsert its rules
  --yes       consent given up front (for scripts)
  --model M   check model M instead of the peer's first ready model
  --port N    the local sidecar's port (POTLUCK_PORT, default ${Defaults.sidecarPort})
  --hub       the hub's health instead: every NATS server in POTLUCK_NATS_URL up, the usage
              stream's replicas current, the ledger consumer's lag, the ledger's DATABASE_URL
              reachable

Exit status: 0 only when every checked path can serve a prompt; 1 when one cannot.`;

/** Waiting for pending failures to confirm: the longest time-to-visible (6 s) plus probe time. */
const confirmDeadlineMs = 20_000;
const confirmPollMs = 1_000;
/** One diagnostics request: a full check ends within its per-layer budgets, a first token included. */
const requestTimeoutMs = 60_000;

export const doctorCommand: Command = {
  name: "doctor",
  summary: "name the layer that stops a prompt reaching a machine, and its fix",
  usage,
  flags: { strings: ["model", "port"], booleans: ["json", "fix", "yes", "hub"] },
  async run(_argv, { flags, positionals }) {
    if (flags.has("hub")) {
      if (positionals.length > 0) throw new CliError("doctor --hub takes no MACHINE", 2);
      return doctorHub(flags.has("json"));
    }
    if (positionals.length > 1) throw new CliError("doctor takes at most one MACHINE", 2);
    const peer = positionals[0];
    if (peer !== undefined && !MachineName.safeParse(peer).success)
      throw new CliError(`"${peer}" is not a machine name (lower-case letters, digits and '-')`, 2);
    const port = Number(flags.get("port") ?? process.env.POTLUCK_PORT ?? Defaults.sidecarPort);
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new CliError("--port: expected a port number", 2);
    const target: Target = { base: `http://127.0.0.1:${port}`, peer, model: flags.get("model"), port };

    let reports = await diagnose(target);
    if (flags.has("fix")) reports = await offerFixes(reports, target, flags.has("yes"));
    if (flags.has("json"))
      process.stdout.write(`${JSON.stringify(peer === undefined ? reports : reports[0], null, 2)}\n`);
    else for (const report of reports) process.stdout.write(renderReport(report));
    return reports.every((r) => r.usable) ? 0 : 1;
  },
};

/** Which sidecar to ask and what about; `potluck mcp`'s doctor tool asks through the same client. */
export interface Target {
  base: string;
  peer: string | undefined;
  model: string | undefined;
  port: number;
}

/** Asks the sidecar, repeating while a failure is still being confirmed (bounded). */
export async function diagnose(target: Target): Promise<DiagnosticsReport[]> {
  const deadline = Date.now() + confirmDeadlineMs;
  for (;;) {
    const reports = await fetchReports(target);
    const pending = reports.some((r) => r.layers.some((l) => l.status === "pending"));
    if (!pending || Date.now() >= deadline) return reports;
    await new Promise((resolve) => setTimeout(resolve, confirmPollMs));
  }
}

async function fetchReports(target: Target): Promise<DiagnosticsReport[]> {
  const query = new URLSearchParams({ fresh: "1" });
  if (target.model !== undefined) query.set("model", target.model);
  const path = target.peer === undefined ? "/diagnostics" : `/diagnostics/${target.peer}`;
  let res: Response;
  try {
    res = await fetch(`${target.base}${path}?${query}`, { signal: AbortSignal.timeout(requestTimeoutMs) });
  } catch {
    // The sidecar itself is the broken layer: let the same check model say so, with its fix.
    return [await localOnlyReport(target)];
  }
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const message = (body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${res.status}`;
    throw new CliError(`asking the sidecar at ${target.base}${path}: ${message}`);
  }
  const parsed = target.peer === undefined ? DiagnosticsOverview.safeParse(body) : DiagnosticsReport.safeParse(body);
  if (!parsed.success)
    throw new CliError(
      `the sidecar at ${target.base} answered ${path} with an unexpected shape; is it the same version?`,
    );
  return "reports" in parsed.data ? parsed.data.reports : [parsed.data];
}

/** Never reached: when the local sidecar fails, every layer after it is suppressed. */
const unreachable = () => Promise.reject(new Error("not probed: the local sidecar is down"));
const noTunnel: TunnelReader = { peers: unreachable };
const noPeer: PeerClient = {
  nudge: async () => undefined,
  probe: unreachable,
  capabilities: unreachable,
  firstToken: unreachable,
};

async function localOnlyReport(target: Target): Promise<DiagnosticsReport> {
  const from = MachineName.safeParse(process.env.POTLUCK_MACHINE ?? "").data ?? machineNameFromHost(hostname());
  const diagnostics = new Diagnostics({
    from,
    interfaceName: process.env.POTLUCK_INTERFACE ?? Defaults.interfaceName,
    localPort: target.port,
    peerPort: Defaults.sidecarPort,
    probes: { local: httpLocalProbe({ url: target.base }), tunnel: noTunnel, peer: noPeer },
  });
  return diagnostics.check(target.peer ?? from);
}

/** Offers the fw-watcher reapply when a report offers it; asks first, always. */
async function offerFixes(
  reports: DiagnosticsReport[],
  target: Target,
  preConsented: boolean,
): Promise<DiagnosticsReport[]> {
  const offered = reports
    .flatMap((r) => r.layers)
    .find((l: LayerResult) => l.offerFix === "fw-reapply" && (l.status === "failed" || l.status === "pending"));
  if (offered === undefined) {
    process.stderr.write("potluck: nothing here can be fixed automatically; follow the fix lines below\n");
    return reports;
  }
  process.stderr.write(`${offered.message}\n`);
  const consent =
    preConsented ||
    (await ask(`Ask the firewall watcher to reinsert its scoped ${Defaults.interfaceName} accept rules? [y/N] `));
  if (!consent) {
    process.stderr.write("potluck: not changing the firewall\n");
    return reports;
  }
  const fwUrl = `http://127.0.0.1:${process.env.POTLUCK_FW_PORT ?? Defaults.fwWatcherPort}`;
  let res: Response;
  try {
    res = await fetch(`${fwUrl}/reapply`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(requestTimeoutMs),
      body: JSON.stringify({ consent: true, requestedBy: "potluck doctor" }),
    });
  } catch (error) {
    throw new CliError(
      `asking the fw-watcher at ${fwUrl} to reapply: ${error instanceof Error ? error.message : String(error)}; is potluck-fw-watcher --watch running?`,
    );
  }
  const result = FwReapplyResult.safeParse(await res.json().catch(() => null));
  if (!res.ok || !result.success)
    throw new CliError(`the fw-watcher at ${fwUrl} refused the reapply (HTTP ${res.status})`);
  process.stderr.write(
    `potluck: fw-watcher inserted ${result.data.added} rule(s); rules ${result.data.status.intact ? "intact" : "still missing"}. Checking again…\n`,
  );
  return diagnose(target);
}

async function ask(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError("--fix needs your consent: run it in a terminal, or add --yes", 2);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
