import { Defaults, serviceCommands, ServiceNames } from "@potluck/protocol";
import { CheckRegistry, defineCheck, type Check, type FixContext } from "./checks.js";
import type { DetailKey } from "./detail.js";
import { DiagnosticsLimits, TimeToVisibleMs } from "./limits.js";

/** Every named failure, so callers and tests match on constants rather than strings. */
export const Failure = {
  sidecarDown: "sidecar-down",
  sidecarUnresponsive: "sidecar-unresponsive",
  coordinatorUnreachable: "coordinator-unreachable",
  unknownMachine: "unknown-machine",
  staleKey: "stale-key",
  rosterUnavailable: "roster-unavailable",
  noInterface: "no-interface",
  tunnelUnreadable: "tunnel-unreadable",
  peerNotConfigured: "peer-not-configured",
  noHandshake: "no-handshake",
  peerSilent: "peer-silent",
  noEndpoint: "no-endpoint",
  relayed: "relayed",
  connectionRefused: "connection-refused",
  firewallDrop: "firewall-drop",
  mtuBlackhole: "mtu-blackhole",
  unreachable: "unreachable",
  unauthorized: "unauthorized",
  peerError: "peer-error",
  badResponse: "bad-response",
  modelLoading: "model-loading",
  modelFailed: "model-failed",
  noModel: "no-model",
  generationFailed: "generation-failed",
  generationTimeout: "generation-timeout",
} as const;
export type Failure = (typeof Failure)[keyof typeof Failure];

const d = (ctx: FixContext, key: DetailKey, fallback = "?") => ctx.detail[key] ?? fallback;
/** The sidecar's service commands on this machine (`from`) or the peer, in that OS's own tools. */
const sidecarOn = (ctx: FixContext, side: "from" | "peer") =>
  serviceCommands(side === "from" ? ctx.fromOs : ctx.peerOs, "sidecar");
const startSidecarOn = (ctx: FixContext, side: "from" | "peer") =>
  `start the sidecar on ${ctx[side]}: potluck up (or, installed as a service: ${sidecarOn(ctx, side).start})`;
const joinCommand = (ctx: FixContext) =>
  `potluck join ${ctx.coordinatorUrl ?? "COORDINATOR_URL"} TOKEN (make a TOKEN with: potluck token create)`;
/** The three scoped rules of field note 1: holes for the mesh interface, never a flush or a policy change. */
const firewallRules = (iface: string) =>
  `nft insert rule inet mullvad input iifname ${iface} accept; nft insert rule inet mullvad output oifname ${iface} accept; nft insert rule ip filter ts-input iifname ${iface} accept`;

/** This machine drops (or may drop) the mesh: the fix runs here, and the sidecar can offer it. */
const localFirewallFix = (ctx: FixContext) =>
  `reapply the scoped ${ctx.interfaceName} accept rules on ${d(ctx, "firewallHost", `${ctx.peer} (and ${ctx.from})`)}: sudo potluck-fw-watcher --install --interface ${ctx.interfaceName} (it runs: ${firewallRules(ctx.interfaceName)}); or allow ${ctx.interfaceName} in the VPN's killswitch settings`;

/**
 * The peer drops the mesh past the tunnel: the fix must run on the peer, never here. What is known
 * about the peer's fw-watcher (its status on NATS) picks the command: a running watcher that failed
 * to repair needs its error looked at; no known watcher needs one installed there.
 */
function remoteFirewallFix(ctx: FixContext): string {
  const peer = ctx.peer;
  const install = `sudo potluck-fw-watcher --install --interface ${ctx.interfaceName} (it runs: ${firewallRules(ctx.interfaceName)})`;
  const killswitch = `or allow ${ctx.interfaceName} in the VPN's killswitch settings on ${peer}`;
  if (ctx.detail.peerWatcher === "intact") {
    return `on ${peer}: its fw-watcher's last reading (${d(ctx, "peerWatcherReadingAgeS")} s ago) found the ${ctx.interfaceName} accept rules in place; if a VPN came up since, reapply them there now with ${install}; otherwise another rule drops the mesh on ${peer}: look for it with sudo nft list ruleset (a drop on ${ctx.interfaceName} or its mesh addresses); ${killswitch}`;
  }
  if (ctx.detail.peerWatcher === "missing") {
    const error = ctx.detail.peerWatcherError
      ? `; its last reapply failed: ${ctx.detail.peerWatcherError} (see journalctl -u ${ServiceNames.fwWatcher} on ${peer})`
      : "";
    return `on ${peer}, whose fw-watcher reports the ${ctx.interfaceName} accept rules missing${error}: reapply them there with ${install}, or restart its watcher (sudo systemctl restart ${ServiceNames.fwWatcher}); ${killswitch}`;
  }
  return `on ${peer} (its firewall drops the mesh; no fw-watcher status from ${peer} is known here): ${install}; keep it repaired across VPN reconnects by running the fw-watcher there: sudo systemctl enable --now ${ServiceNames.fwWatcher}; ${killswitch}`;
}

export const localSidecarCheck = defineCheck({
  code: "local-sidecar",
  title: "Local sidecar",
  severity: "high",
  dependsOn: [],
  timeToVisibleMs: TimeToVisibleMs.localSidecar,
  okMessage: (ctx) => `the sidecar on ${ctx.from} answers (${d(ctx, "health", "ok")})`,
  failures: {
    [Failure.sidecarDown]: {
      message: (ctx) => `nothing listens on ${ctx.from}'s sidecar port ${ctx.localPort}`,
      fix: (ctx) => startSidecarOn(ctx, "from"),
    },
    [Failure.sidecarUnresponsive]: {
      message: (ctx) => `the sidecar on ${ctx.from} does not answer: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `restart the sidecar on ${ctx.from}: ${sidecarOn(ctx, "from").restart} (or stop and rerun potluck up)`,
    },
  },
  detailKeys: ["health", "error"],
});

export const coordinatorCheck = defineCheck({
  code: "coordinator",
  title: "Coordinator",
  severity: "medium",
  dependsOn: ["local-sidecar"],
  timeToVisibleMs: TimeToVisibleMs.coordinator,
  okMessage: (ctx) => `coordinator ${ctx.coordinatorUrl ?? ""} reachable`.replace("  ", " "),
  failures: {
    [Failure.coordinatorUnreachable]: {
      message: (ctx) => `coordinator unreachable at ${ctx.coordinatorUrl}: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `start the coordinator (potluck-coordinator, or potluck up on the machine that hosts it) and check POTLUCK_COORDINATOR_URL=${ctx.coordinatorUrl} on ${ctx.from}: curl ${ctx.coordinatorUrl}/health`,
    },
  },
  detailKeys: ["error"],
});

export const rosterCheck = defineCheck({
  code: "roster",
  title: "Roster",
  severity: "high",
  dependsOn: ["coordinator"],
  timeToVisibleMs: TimeToVisibleMs.roster,
  okMessage: (ctx) =>
    `${ctx.peer} is in the roster at ${ctx.meshIp}, key current${d(ctx, "rosterState", "") ? ` (roster says ${d(ctx, "rosterState")})` : ""}`,
  failures: {
    [Failure.unknownMachine]: {
      message: (ctx) => `peer not present: no machine named ${ctx.peer} in the roster`,
      fix: (ctx) => `enroll it: on ${ctx.peer} run ${joinCommand(ctx)}; list enrolled names with: potluck peers`,
    },
    [Failure.staleKey]: {
      message: (ctx) => `stale WireGuard key: the key ${ctx.peer}'s tunnel uses differs from the roster's`,
      fix: (ctx) =>
        `on ${ctx.peer}, rejoin so the roster gets its current key: ${joinCommand(ctx)}; then restart its sidecar`,
    },
    [Failure.rosterUnavailable]: {
      message: (ctx) => `could not read the roster: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `check the coordinator's roster: curl ${ctx.coordinatorUrl ?? "COORDINATOR_URL"}/v1/roster from ${ctx.from}`,
    },
  },
  detailKeys: ["error", "rosterKey", "rosterState"],
});

export const tunnelCheck = defineCheck({
  code: "tunnel",
  title: "Tunnel",
  severity: "high",
  dependsOn: ["roster"],
  timeToVisibleMs: TimeToVisibleMs.tunnel,
  okMessage: (ctx) =>
    ctx.detail.relayVia === undefined
      ? `handshake with ${ctx.peer} on ${ctx.interfaceName} ${d(ctx, "handshakeAgeS")} s ago`
      : `handshake with ${ctx.detail.relayVia} (relaying to ${ctx.peer}) on ${ctx.interfaceName} ${d(ctx, "handshakeAgeS")} s ago`,
  failures: {
    [Failure.tunnelUnreadable]: {
      message: (ctx) =>
        `cannot read ${ctx.interfaceName} on ${ctx.from} (${d(ctx, "error")}), so the handshake is unchecked; the data plane below still tests the path`,
      fix: (ctx) =>
        `let the sidecar read WireGuard state on ${ctx.from}: run it with CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN) or as root; check with: sudo wg show ${ctx.interfaceName}`,
      warningOnly: true,
    },
    [Failure.noInterface]: {
      message: (ctx) => `no ${ctx.interfaceName} interface on ${ctx.from}: ${d(ctx, "error")}`,
      fix: (ctx) => `bring the mesh up on ${ctx.from}: ${joinCommand(ctx)} (check with: wg show ${ctx.interfaceName})`,
    },
    [Failure.peerNotConfigured]: {
      message: (ctx) =>
        `${ctx.interfaceName} on ${ctx.from} has no peer with ${ctx.peer}'s roster key ${d(ctx, "rosterKey")}`,
      fix: (ctx) =>
        `refresh ${ctx.from}'s mesh from the roster: restart its sidecar (${sidecarOn(ctx, "from").restart}) or rejoin; check with: wg show ${ctx.interfaceName} peers`,
    },
    [Failure.noHandshake]: {
      message: (ctx) =>
        `no tunnel: no WireGuard handshake with ${ctx.peer} on ${ctx.interfaceName} (last: ${d(ctx, "lastHandshake", "never")}); ${ctx.peer} is powered off, off the network, or holds a different key`,
      fix: (ctx) =>
        `power on ${ctx.peer} and check it is on the network (UDP ${d(ctx, "endpoint", `port ${Defaults.wireguardPort}`)}); on ${ctx.peer} compare "wg show ${ctx.interfaceName} public-key" with the roster key ${d(ctx, "rosterKey")}`,
    },
    [Failure.peerSilent]: {
      message: (ctx) =>
        `no tunnel: ${ctx.peer}'s WireGuard stopped answering on ${ctx.interfaceName} (last handshake ${d(ctx, "lastHandshake", "never")}, nothing received for ${d(ctx, "silentS", "?")} s after a probe); ${ctx.peer} is powered off, off the network, or holds a different key`,
      fix: (ctx) =>
        `power on ${ctx.peer} and check it is on the network (UDP ${d(ctx, "endpoint", `port ${Defaults.wireguardPort}`)}); on ${ctx.peer} check "wg show ${ctx.interfaceName}" lists ${ctx.from} and its public key matches the roster key ${d(ctx, "rosterKey")}`,
    },
    [Failure.firewallDrop]: {
      message: (ctx) =>
        `no handshake with ${ctx.peer}, and the firewall on ${ctx.from} lacks the ${ctx.interfaceName} accept rules (${d(ctx, "firewall")}): firewall likely blocking mesh traffic on ${ctx.interfaceName}`,
      fix: (ctx) =>
        `reapply the scoped ${ctx.interfaceName} accept rules on ${ctx.from}: sudo potluck-fw-watcher --install --interface ${ctx.interfaceName} (it runs: ${firewallRules(ctx.interfaceName)})`,
      offerFix: "fw-reapply",
    },
  },
  detailKeys: ["error", "endpoint", "lastHandshake", "handshakeAgeS", "firewall", "relayVia"],
});

/**
 * Relayed via the hub is a healthy state (the mesh agent chose it because the direct path was
 * silent, and comes back by itself): what it costs, and why, with no fix to apply.
 */
function relayedMessage(ctx: FixContext): string {
  const rtt = ctx.detail.relayRttMs === undefined ? "" : `; ${ctx.detail.relayRttMs} ms round trip through it`;
  const added =
    ctx.detail.relayAddedMs !== undefined
      ? `, +${ctx.detail.relayAddedMs} ms over the last direct one`
      : ctx.detail.relayRttMs === undefined
        ? ""
        : " (no direct round trip measured here yet to compare)";
  return `relayed via hub ${d(ctx, "relayVia")}: no direct WireGuard path to ${ctx.peer} now, so its traffic goes through ${d(ctx, "relayVia")}${rtt}${added}; the mesh agent goes back to direct at the next direct handshake`;
}

export const pathCheck = defineCheck({
  code: "path",
  title: "Path",
  severity: "low",
  dependsOn: ["tunnel"],
  timeToVisibleMs: TimeToVisibleMs.path,
  okMessage: (ctx) => (ctx.detail.relayVia === undefined ? `direct to ${d(ctx, "endpoint")}` : relayedMessage(ctx)),
  failures: {
    [Failure.noEndpoint]: {
      message: (ctx) => `WireGuard has no endpoint for ${ctx.peer}`,
      fix: (ctx) =>
        `give ${ctx.peer} an endpoint: its roster entry needs one (rejoin ${ctx.peer}), or set it by hand: wg set ${ctx.interfaceName} peer ${d(ctx, "rosterKey")} endpoint HOST:${Defaults.wireguardPort}`,
    },
    [Failure.relayed]: {
      message: (ctx) => `relayed via ${d(ctx, "endpoint")}: ${d(ctx, "relayReason")}`,
      fix: (ctx) =>
        `for a direct path, let UDP ${Defaults.wireguardPort} reach ${ctx.peer} at one of its endpoints (${d(ctx, "advertised", "none advertised")}) or forward that port on its router`,
      warningOnly: true,
    },
  },
  detailKeys: ["endpoint", "advertised", "relayReason", "relayVia", "relayRttMs", "relayAddedMs"],
});

export const dataPlaneCheck = defineCheck({
  code: "data-plane",
  title: "Peer data plane",
  severity: "high",
  dependsOn: ["path"],
  timeToVisibleMs: TimeToVisibleMs.dataPlane,
  okMessage: (ctx) =>
    `HTTP to ${ctx.meshIp}:${ctx.peerPort} ok: ${DiagnosticsLimits.smallProbeBytes}-byte and ${DiagnosticsLimits.largeProbeBytes}-byte probes echoed`,
  failures: {
    [Failure.connectionRefused]: {
      message: (ctx) => `connection refused: ${ctx.peer} is up but nothing listens on ${ctx.meshIp}:${ctx.peerPort}`,
      fix: (ctx) => startSidecarOn(ctx, "peer"),
    },
    [Failure.firewallDrop]: {
      message: (ctx) =>
        `firewall likely blocking mesh traffic on ${ctx.interfaceName}: ${d(ctx, "evidence", `the tunnel has a fresh handshake (${d(ctx, "handshakeAgeS")} s ago)`)}, but HTTP to ${ctx.meshIp}:${ctx.peerPort} got no answer` +
        `${ctx.detail.peerFirewall && !d(ctx, "evidence", "").startsWith(ctx.detail.peerFirewall) ? `; ${ctx.detail.peerFirewall}` : ""}${ctx.detail.firewall ? `; ${ctx.detail.firewall}` : ""}`,
      fix: (ctx) => (ctx.detail.firewallSide === "remote" ? remoteFirewallFix(ctx) : localFirewallFix(ctx)),
      offerFix: "fw-reapply",
    },
    [Failure.mtuBlackhole]: {
      message: (ctx) =>
        `MTU/fragmentation black hole: the ${DiagnosticsLimits.smallProbeBytes}-byte probe passed but the ${DiagnosticsLimits.largeProbeBytes}-byte probe was lost between ${ctx.from} and ${ctx.peer}`,
      fix: (ctx) =>
        `lower the mesh MTU on both ${ctx.from} and ${ctx.peer}: ip link set dev ${ctx.interfaceName} mtu 1200 (Potluck's default is ${Defaults.meshMtu}); look for another VPN or PPPoE link shrinking the underlay path`,
    },
    [Failure.unreachable]: {
      message: (ctx) => `${ctx.meshIp} is unreachable from ${ctx.from}: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `check the route to the mesh on ${ctx.from}: ip route get ${ctx.meshIp} should name ${ctx.interfaceName}`,
    },
    [Failure.unauthorized]: {
      message: (ctx) => `${ctx.peer} rejected ${ctx.from}'s signed request: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `${ctx.peer} does not know ${ctx.from}'s identity key: rejoin ${ctx.from} (${joinCommand(ctx)}) and let ${ctx.peer} pick up the new roster`,
    },
    [Failure.peerError]: {
      message: (ctx) => `the peer sidecar answered with an error: ${d(ctx, "error")}`,
      fix: (ctx) => `check the sidecar log on ${ctx.peer}: ${sidecarOn(ctx, "peer").logs}`,
    },
  },
  detailKeys: [
    "error",
    "evidence",
    "firewall",
    "firewallHost",
    "firewallSide",
    "peerWatcher",
    "peerFirewall",
    "peerWatcherError",
    "peerWatcherReadingAgeS",
    "silentS",
  ],
});

export const capabilitiesCheck = defineCheck({
  code: "capabilities",
  title: "Capabilities",
  severity: "medium",
  dependsOn: ["data-plane"],
  timeToVisibleMs: TimeToVisibleMs.capabilities,
  okMessage: (ctx) => `${ctx.peer} reports ${d(ctx, "models", "no")} model(s)`,
  failures: {
    [Failure.unauthorized]: {
      message: (ctx) => `${ctx.peer} rejected ${ctx.from}'s signed request: ${d(ctx, "error")}`,
      fix: (ctx) => `${ctx.peer} does not know ${ctx.from}'s identity key: rejoin ${ctx.from} (${joinCommand(ctx)})`,
    },
    [Failure.badResponse]: {
      message: (ctx) => `GET /peer/capabilities failed: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `update and restart the sidecar on ${ctx.peer} so both sides speak the same protocol; its log: ${sidecarOn(ctx, "peer").logs}`,
    },
  },
  detailKeys: ["error", "models"],
});

export const modelRuntimeCheck = defineCheck({
  code: "model-runtime",
  title: "Model runtime",
  severity: "high",
  dependsOn: ["capabilities"],
  timeToVisibleMs: TimeToVisibleMs.modelRuntime,
  okMessage: (ctx) => `${ctx.model} ready on ${ctx.peer}`,
  failures: {
    [Failure.modelLoading]: {
      message: (ctx) =>
        `model runtime not ready: ${ctx.model} is still loading on ${ctx.peer} (${d(ctx, "progress", "progress unknown")})`,
      fix: (ctx) =>
        `wait for ${ctx.model} to finish loading on ${ctx.peer}; it becomes ready without action (watch: potluck doctor ${ctx.peer})`,
    },
    [Failure.modelFailed]: {
      message: (ctx) =>
        `model runtime failed: ${ctx.model} did not load on ${ctx.peer}: ${d(ctx, "reason", "no reason given")}`,
      fix: (ctx) =>
        `fix the runtime on ${ctx.peer} (the model file in POTLUCK_MODELS, GPU drivers and libraries), then restart it: ${sidecarOn(ctx, "peer").restart}`,
    },
    [Failure.noModel]: {
      message: (ctx) =>
        `${ctx.peer} serves no ${ctx.model ?? "model"}${ctx.detail.available ? ` (it has: ${ctx.detail.available})` : ""}`,
      fix: (ctx) => `set POTLUCK_MODELS on ${ctx.peer} to a GGUF file (or directory) and restart its sidecar`,
    },
  },
  detailKeys: ["available", "progress", "reason"],
});

export const firstTokenCheck = defineCheck({
  code: "first-token",
  title: "First token",
  severity: "high",
  dependsOn: ["model-runtime"],
  timeToVisibleMs: TimeToVisibleMs.firstToken,
  okMessage: (ctx) =>
    ctx.detail.reusedAgeS !== undefined
      ? `first token from ${d(ctx, "servedBy", ctx.peer)} ${ctx.detail.reusedAgeS} s ago (reused, not generated again)`
      : `first token from ${d(ctx, "servedBy", ctx.peer)} in ${d(ctx, "firstTokenMs")} ms`,
  failures: {
    [Failure.modelLoading]: {
      message: (ctx) => `model runtime not ready: ${ctx.peer} answered 503 (${d(ctx, "error")})`,
      fix: (ctx) => `wait for ${ctx.model} to finish loading on ${ctx.peer}`,
    },
    [Failure.generationFailed]: {
      message: (ctx) => `generation on ${ctx.peer} failed: ${d(ctx, "error")}`,
      fix: (ctx) =>
        `check the runtime on ${ctx.peer}: ${sidecarOn(ctx, "peer").logs}; restart it with ${sidecarOn(ctx, "peer").restart}`,
    },
    [Failure.generationTimeout]: {
      message: (ctx) => `no token from ${ctx.peer} within ${DiagnosticsLimits.firstTokenTimeoutMs / 1000} s`,
      fix: (ctx) => `${ctx.peer} may be overloaded: check its load and the model size against its memory`,
    },
  },
  detailKeys: ["error", "servedBy", "firstTokenMs", "reusedAgeS"],
});

/** The nine layers between a prompt and its first token, in dependency order. */
export const layerChecks: readonly Check[] = [
  localSidecarCheck,
  coordinatorCheck,
  rosterCheck,
  tunnelCheck,
  pathCheck,
  dataPlaneCheck,
  capabilitiesCheck,
  modelRuntimeCheck,
  firstTokenCheck,
];

/**
 * A registry holding every layer; registering checks one by one proves no code repeats and every dependency comes
 * first.
 */
export function buildRegistry(): CheckRegistry {
  const registry = new CheckRegistry();
  for (const check of layerChecks) registry.register(check);
  return registry;
}
