/**
 * Runs the diagnostics library with its real probes (`wg`, signed HTTP to the peer sidecar, the
 * local fw-watcher, a roster file, an optional coordinator) from inside one machine, printing one
 * JSON line per check: { atMs, report }. The lab tests and the bench run it inside a lab host's
 * network namespace, so the probes take exactly the path a routed prompt would.
 *
 *   node --import tsx tools/bench/diagnostics/path-check.ts --from mac --peer linux \
 *     --roster FILE --identity PEM --local-url http://127.0.0.1:8321 \
 *     [--coordinator URL [--roster-from-coordinator]] [--fw-url URL] [--nats-url URL --nats-prefix ROOT]
 *     [--model M] [--watch-ms N] [--interval-ms N] [--until CODE|usable]
 */
import { readFileSync } from "node:fs";
import { Defaults } from "@potluck/protocol";
import { privateKeyFromPem, signRequest } from "@potluck/peer";
import {
  Diagnostics,
  fileRosterSource,
  httpCoordinatorProbe,
  httpFirewallProbe,
  httpLocalProbe,
  httpPeerClient,
  httpRosterSource,
  natsPeerFirewallSource,
  tcpUnderlayProbe,
  wgTunnelReader,
  type Probes,
} from "@potluck/diagnostics";
import { benchFlags } from "../common/args.js";

/** A watch never runs longer than this, whatever it was asked. */
const watchMsMax = 10 * 60_000;

const { flags } = benchFlags(process.argv.slice(2), {
  strings: [
    "baseline",
    "coordinator",
    "from",
    "fw-url",
    "identity",
    "interface",
    "interval-ms",
    "local-url",
    "model",
    "nats-prefix",
    "nats-url",
    "owner",
    "peer",
    "peer-port",
    "roster",
    "until",
    "watch-ms",
  ],
  booleans: ["fresh", "roster-from-coordinator"],
  positionals: false,
});
const need = (name: string): string => {
  const value = flags.get(name);
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
};
const from = need("from");
const peer = need("peer");
const privateKey = privateKeyFromPem(readFileSync(need("identity"), "utf8"));
const probes: Probes = {
  local: httpLocalProbe({ url: need("local-url") }),
  roster: flags.has("roster-from-coordinator")
    ? httpRosterSource({ url: need("coordinator") })
    : fileRosterSource(need("roster")),
  tunnel: wgTunnelReader(),
  peer: httpPeerClient({
    requester: { machine: from, owner: flags.get("owner") ?? "home" },
    sign: (request) => signRequest(request, { machine: from, privateKey }),
  }),
  firewall: httpFirewallProbe({ url: flags.get("fw-url") ?? `http://127.0.0.1:${Defaults.fwWatcherPort}` }),
  underlay: tcpUnderlayProbe(),
};
// As the sidecar does: peers' fw-watcher statuses when a NATS subject root is given.
const natsPrefix = flags.get("nats-prefix");
const peerFirewall =
  natsPrefix === undefined
    ? undefined
    : natsPeerFirewallSource({ natsUrl: flags.get("nats-url") ?? Defaults.natsUrl, subjectRoot: natsPrefix });
if (peerFirewall !== undefined) probes.peerFirewall = peerFirewall;
const coordinator = flags.get("coordinator");
if (coordinator !== undefined) probes.coordinator = httpCoordinatorProbe({ url: coordinator });

const diagnostics = new Diagnostics({
  from,
  probes,
  interfaceName: flags.get("interface") ?? Defaults.interfaceName,
  localPort: Number(new URL(need("local-url")).port || Defaults.sidecarPort),
  peerPort: Number(flags.get("peer-port") ?? Defaults.sidecarPort),
  // Every check in a watch is a new sample: the cache would hide the state changes a watch is for.
  limits: { cacheTtlMs: 0 },
});
const model = flags.get("model");
const watchMs = Math.min(Number(flags.get("watch-ms") ?? 0), watchMsMax);
const intervalMs = Number(flags.get("interval-ms") ?? 500);
const until = flags.get("until");
const startedAt = Date.now();

const fresh = flags.has("fresh");
const baselineRounds = Math.min(Number(flags.get("baseline") ?? 0), 1_000);
if (baselineRounds > 0) await baseline(baselineRounds);

for (;;) {
  const started = performance.now();
  const report = await diagnostics.check(peer, {
    ...(model === undefined ? {} : { model }),
    ...(fresh ? { forceFresh: true } : {}),
  });
  const durationMs = performance.now() - started;
  process.stdout.write(`${JSON.stringify({ atMs: Date.now(), durationMs, report })}\n`);
  const done = until === "usable" ? report.usable : until !== undefined && report.firstFailure === until;
  if (done || Date.now() - startedAt >= watchMs) break;
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
await peerFirewall?.close();

/** The cheapest thing that crosses the same path: one unsigned GET /health to the peer, timed. */
async function baseline(rounds: number): Promise<void> {
  const entry = await probes.roster!.lookup(peer, AbortSignal.timeout(5_000));
  if (entry === null) throw new Error(`baseline: ${peer} is not in the roster`);
  const url = `http://${entry.meshIp}:${flags.get("peer-port") ?? Defaults.sidecarPort}/health`;
  const samplesMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    samplesMs.push(performance.now() - started);
  }
  process.stdout.write(`${JSON.stringify({ baselineMs: samplesMs })}\n`);
}
