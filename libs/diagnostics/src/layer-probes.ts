import type { FwStatus, LayerCode, ModelInfo, RosterEntry } from "@potluck/protocol";
import type { FixContext } from "./checks.js";
import { Failure } from "./layers.js";
import type { DiagnosticsBudget } from "./limits.js";
import { ProbeError, ProbeErrorKind, type Clock, type CoordinatorProbe, type FirewallProbe, type LocalProbe, type PeerClient, type PeerFirewallSource, type PeerTarget, type RosterSource, type SelfClient, type TunnelPeer, type TunnelReader, type UnderlayProbe } from "./probes.js";

/** What one layer's probe concluded. A failure names one of the layer's registered failures. */
export type Outcome =
  | { kind: "ok" }
  | { kind: "skipped"; message: string }
  | { kind: "fail"; failure: Failure; offerFix?: boolean; layer?: LayerCode };

export interface Probes {
  local: LocalProbe;
  coordinator?: CoordinatorProbe;
  roster?: RosterSource;
  tunnel: TunnelReader;
  peer: PeerClient;
  firewall?: FirewallProbe;
  /** The local report's model path; without it the local path goes through the peer API over loopback. */
  self?: SelfClient;
  /** Liveness evidence from the peer's on-link underlay address; without it, only WireGuard's counters tell. */
  underlay?: UnderlayProbe;
  /** The peers' fw-watcher statuses (NATS); without it, a remote firewall is inferred, never read. */
  peerFirewall?: PeerFirewallSource;
}

/** Everything one run learns on its way down the layers; later layers read what earlier ones found. */
export interface RunState {
  ctx: FixContext;
  self: boolean;
  target: PeerTarget;
  probes: Probes;
  clock: Clock;
  limits: DiagnosticsBudget;
  relays: ReadonlySet<string>;
  requestedModel?: string;
  entry?: RosterEntry;
  tunnelPeer?: TunnelPeer;
  /** The models the capabilities layer found. */
  models?: ModelInfo[];
  /** Reuse of a recent first token (see Diagnostics); undefined forces a generation. */
  recentFirstToken?: { servedBy: string; ageMs: number };
  /** Set once the local fw-watcher answered its status: a reapply can be offered. */
  firewallWatcherPresent?: boolean;
  /** When a layer already failing on this path turns visible (its streak's start plus its time-to-visible). */
  visibleAt?: (layer: LayerCode) => number | undefined;
}

type LayerProbe = (run: RunState) => Promise<Outcome>;

const ok: Outcome = { kind: "ok" };
const fail = (failure: Failure, offerFix?: boolean): Outcome => (offerFix === undefined ? { kind: "fail", failure } : { kind: "fail", failure, offerFix });
const timeout = (ms: number) => AbortSignal.timeout(ms);

/** One probe per layer, keyed by layer code. */
export const layerProbes: Record<LayerCode, LayerProbe> = {
  "local-sidecar": async (run) => {
    try {
      const health = await run.probes.local.health(timeout(run.limits.localTimeoutMs));
      run.ctx.detail.health = health.status;
      return ok;
    } catch (error) {
      run.ctx.detail.error = describe(error);
      return fail(isKind(error, ProbeErrorKind.refused) ? Failure.sidecarDown : Failure.sidecarUnresponsive);
    }
  },
  coordinator: async (run) => {
    const coordinator = run.probes.coordinator;
    if (coordinator === undefined) return { kind: "skipped", message: "no coordinator configured (POTLUCK_COORDINATOR_URL is unset): single-machine mode" };
    try {
      await coordinator.health(timeout(run.limits.coordinatorTimeoutMs));
      return ok;
    } catch (error) {
      run.ctx.detail.error = describe(error);
      return fail(Failure.coordinatorUnreachable);
    }
  },
  roster: async (run) => {
    const roster = run.probes.roster;
    if (roster === undefined) {
      return run.self ? { kind: "skipped", message: "no roster: this machine has not joined a mesh" } : fail(Failure.rosterUnavailable);
    }
    let entry: RosterEntry | null;
    try {
      entry = await roster.lookup(run.ctx.peer, timeout(run.limits.coordinatorTimeoutMs));
    } catch (error) {
      run.ctx.detail.error = describe(error);
      return fail(Failure.rosterUnavailable);
    }
    if (entry === null) return run.self ? { kind: "skipped", message: `${run.ctx.peer} (this machine) is not in the roster yet` } : fail(Failure.unknownMachine);
    run.entry = entry;
    run.ctx.meshIp = entry.meshIp;
    run.ctx.detail.rosterKey = entry.wireguardPublicKey;
    run.ctx.detail.rosterState = entry.state;
    if (!run.self) run.target = { ...run.target, host: entry.meshIp };
    return entry.staleKey ? fail(Failure.staleKey) : ok;
  },
  tunnel: async (run) => {
    if (run.self) return { kind: "skipped", message: "this machine: no mesh hop" };
    return probeTunnel(run);
  },
  path: async (run) => {
    if (run.self) return { kind: "skipped", message: "this machine: no mesh hop" };
    if (run.tunnelPeer === undefined) return { kind: "skipped", message: `${run.ctx.interfaceName} could not be read, so the path is unknown` };
    const endpoint = run.tunnelPeer?.endpoint ?? null;
    if (endpoint === null) return fail(Failure.noEndpoint);
    run.ctx.detail.endpoint = endpoint;
    const advertised = run.entry?.endpoints ?? [];
    run.ctx.detail.advertised = advertised.join(", ");
    if (run.relays.has(endpoint)) {
      run.ctx.detail.relayReason = advertised.length === 0 ? `${run.ctx.peer} advertises no endpoint` : `no direct UDP answer from ${advertised.join(", ")}`;
      return fail(Failure.relayed);
    }
    return ok;
  },
  "data-plane": async (run) => {
    if (run.self) return { kind: "skipped", message: "this machine: no mesh hop" };
    return probeDataPlane(run);
  },
  capabilities: async (run) => {
    try {
      const selfClient = run.self ? run.probes.self : undefined;
      const models = selfClient !== undefined
        ? await selfClient.models(timeout(run.limits.capabilitiesTimeoutMs))
        : (await run.probes.peer.capabilities(run.target, timeout(run.limits.capabilitiesTimeoutMs))).models;
      run.models = models;
      run.ctx.detail.models = String(models.length);
      return ok;
    } catch (error) {
      run.ctx.detail.error = describe(error);
      return fail(isUnauthorized(error) ? Failure.unauthorized : Failure.badResponse);
    }
  },
  "model-runtime": async (run) => probeModelRuntime(run),
  "first-token": async (run) => {
    const model = run.ctx.model ?? "";
    if (run.recentFirstToken !== undefined) {
      run.ctx.detail.servedBy = run.recentFirstToken.servedBy;
      run.ctx.detail.firstTokenMs = `(reused, ${Math.round(run.recentFirstToken.ageMs / 1000)} s old)`;
      return ok;
    }
    const started = run.clock.now();
    try {
      const selfClient = run.self ? run.probes.self : undefined;
      const signal = timeout(run.limits.firstTokenTimeoutMs);
      const token = selfClient !== undefined ? await selfClient.firstToken(model, signal) : await run.probes.peer.firstToken(run.target, model, signal);
      run.ctx.detail.servedBy = token.servedBy;
      run.ctx.detail.firstTokenMs = String(Math.round(run.clock.now() - started));
      return ok;
    } catch (error) {
      run.ctx.detail.error = describe(error);
      if (error instanceof ProbeError && error.http?.status === 503) return fail(Failure.modelLoading);
      return fail(isKind(error, ProbeErrorKind.timeout) ? Failure.generationTimeout : Failure.generationFailed);
    }
  },
};

/**
 * A fresh handshake proves the two WireGuard endpoints exchanged packets recently. An idle
 * tunnel has none, so before calling it broken, send it traffic and give WireGuard one retry.
 */
async function probeTunnel(run: RunState): Promise<Outcome> {
  const { ctx, limits, clock } = run;
  const key = run.entry?.wireguardPublicKey;
  let peer: TunnelPeer | undefined;
  const read = async () => {
    const peers = await run.probes.tunnel.peers(ctx.interfaceName, timeout(limits.wgTimeoutMs));
    peer = peers.find((p) => p.publicKey === key);
    return peer;
  };
  try {
    await read();
  } catch (error) {
    ctx.detail.error = describe(error);
    // Without the right to read WireGuard, say so and let the data plane test the path itself.
    if (/permission denied|operation not permitted|EACCES|EPERM/i.test(ctx.detail.error)) return fail(Failure.tunnelUnreadable);
    return fail(Failure.noInterface);
  }
  if (peer === undefined) return fail(Failure.peerNotConfigured);
  run.tunnelPeer = peer;
  if (peer.endpoint !== null) ctx.detail.endpoint = peer.endpoint;
  const fresh = (p: TunnelPeer | undefined) => p?.latestHandshakeAtMs != null && clock.now() - p.latestHandshakeAtMs < limits.handshakeFreshMs;
  if (!fresh(peer)) {
    const deadline = clock.now() + limits.handshakeWaitMs;
    void run.probes.peer.nudge(run.target, timeout(limits.handshakeWaitMs));
    while (!fresh(peer) && clock.now() < deadline) {
      await clock.sleep(limits.handshakePollMs);
      await read().catch(() => undefined);
    }
  }
  if (peer !== undefined) run.tunnelPeer = peer;
  const last = peer?.latestHandshakeAtMs ?? null;
  ctx.detail.lastHandshake = last === null ? "never" : `${Math.round((clock.now() - last) / 1000)} s ago`;
  if (!fresh(peer)) {
    const blocking = await localFirewallBlocking(run);
    return blocking ? fail(Failure.firewallDrop, true) : fail(Failure.noHandshake);
  }
  ctx.detail.handshakeAgeS = String(Math.max(0, Math.round((clock.now() - (last ?? 0)) / 1000)));
  return ok;
}

/** A tiny probe, then one too big for a single mesh packet: passing the first and losing the second is an MTU black hole. */
async function probeDataPlane(run: RunState): Promise<Outcome> {
  const { limits } = run;
  const sentAt = run.clock.now();
  try {
    await run.probes.peer.probe(run.target, limits.smallProbeBytes, timeout(limits.smallProbeTimeoutMs));
  } catch (error) {
    run.ctx.detail.error = describe(error);
    // Classifying a timeout takes seconds; a fault that cleared meanwhile is not reported.
    const outcome = await classifyDataPlane(run, error, false, sentAt);
    if (outcome === "cleared") {
      // The path answered again: go on to the large probe.
    } else if (outcome.kind === "fail" && outcome.layer === undefined && (await heldUntilVisible(run, "data-plane"))) {
      // Cleared while the failure was being held to its time-to-visible.
    } else {
      return outcome;
    }
  }
  try {
    await run.probes.peer.probe(run.target, limits.largeProbeBytes, timeout(limits.largeProbeTimeoutMs));
  } catch (error) {
    run.ctx.detail.error = describe(error);
    const outcome = await classifyDataPlane(run, error, true, run.clock.now());
    // A lost large probe is an MTU black hole, never "cleared": only small-probe timeouts are rechecked.
    return outcome === "cleared" ? fail(Failure.mtuBlackhole) : outcome;
  }
  return ok;
}

/**
 * A failure is shown once it has lasted its layer's time-to-visible, but only a check can show it:
 * without this, a failure that becomes visible mid-way between two checks is named a whole check
 * later (a small-probe timeout plus the caller's interval). When the streak this failure continues
 * turns visible within `confirmHoldMs`, keep rechecking the path until that moment and report then.
 * Resolves true when the path answered meanwhile (the fault cleared: nothing to report).
 */
async function heldUntilVisible(run: RunState, layer: LayerCode): Promise<boolean> {
  const visibleAt = run.visibleAt?.(layer);
  if (visibleAt === undefined) return false;
  const { clock, limits } = run;
  const waitMs = visibleAt - clock.now();
  if (waitMs <= 0 || waitMs > limits.confirmHoldMs) return false;
  // One small probe per poll interval, none outliving the hold: bounded by confirmHoldMs.
  while (clock.now() < visibleAt) {
    const attemptAt = clock.now();
    try {
      await run.probes.peer.probe(run.target, limits.smallProbeBytes, timeout(Math.max(1, Math.min(limits.smallProbeTimeoutMs, visibleAt - attemptAt))));
      return true;
    } catch {
      const restMs = Math.min(limits.livePollMs - (clock.now() - attemptAt), visibleAt - clock.now());
      if (restMs > 0) await clock.sleep(restMs);
    }
  }
  return false;
}

/**
 * Retries the tiny probe until it passes or `stop` aborts, at most one attempt per poll interval
 * (the only retry diagnostics makes, bounded by the liveness wait). Resolves true when it passed.
 */
async function recheckUntil(run: RunState, stop: AbortSignal): Promise<boolean> {
  while (!stop.aborted) {
    const attemptAt = run.clock.now();
    try {
      await run.probes.peer.probe(run.target, run.limits.smallProbeBytes, AbortSignal.any([stop, timeout(run.limits.smallProbeTimeoutMs)]));
      return !stop.aborted;
    } catch {
      const restMs = run.limits.livePollMs - (run.clock.now() - attemptAt);
      if (restMs > 0 && !stop.aborted) await run.clock.sleep(restMs);
    }
  }
  return false;
}

async function classifyDataPlane(run: RunState, error: unknown, large: boolean, sentAt: number): Promise<Outcome | "cleared"> {
  const kind = error instanceof ProbeError ? error.kind : ProbeErrorKind.unreachable;
  if (large && (kind === ProbeErrorKind.timeout || kind === ProbeErrorKind.reset)) return fail(Failure.mtuBlackhole);
  switch (kind) {
    case ProbeErrorKind.refused:
      return fail(Failure.connectionRefused);
    case ProbeErrorKind.timeout:
      return classifyTimeout(run, sentAt);
    case ProbeErrorKind.http:
      return fail(isUnauthorized(error) ? Failure.unauthorized : Failure.peerError);
    case ProbeErrorKind.unreachable:
      return fail(Failure.unreachable);
    default:
      return fail(Failure.peerError);
  }
}

/**
 * A probe got no answer. Whether the peer's WireGuard still answers tells a firewall drop (the
 * packets die past the tunnel) from a peer that is gone (a recent handshake does not prove it is
 * still there); whether our own packets entered the tunnel tells a local block from a remote one.
 */
async function classifyTimeout(run: RunState, sentAt: number): Promise<Outcome | "cleared"> {
  const { ctx } = run;
  // The peer's own fw-watcher saying its accept rules are missing under a VPN firewall is direct
  // evidence (and, being recent, proof the peer is up): no need to wait for WireGuard to tell.
  const remote = peerFirewallReport(run);
  if (remote?.blocking === true && !(await localFirewallBlocking(run))) {
    ctx.detail.evidence = remote.evidence;
    return remoteFirewallDrop(run, remote);
  }
  // While waiting for evidence, keep probing: a path that answers again ends the wait as "cleared".
  const stop = new AbortController();
  const cleared = recheckUntil(run, stop.signal).then((passed) => {
    if (passed) stop.abort();
    return passed;
  });
  const liveness = await peerLiveness(run, sentAt, stop.signal);
  stop.abort();
  if (await cleared) return "cleared";
  const local = await localFirewallBlocking(run);
  if (liveness === "silent" && !local) return { kind: "fail", failure: Failure.peerSilent, layer: "tunnel" };
  if (local || liveness === "local-stuck") {
    ctx.detail.firewallHost = ctx.from;
    if (liveness === "local-stuck") ctx.detail.evidence = `packets to ${ctx.meshIp} never entered ${ctx.interfaceName} on ${ctx.from}`;
    // Our own packets never reach the tunnel: the watcher's reapply (idempotent, scoped) is worth
    // offering even when its last reading predates the block.
    return fail(Failure.firewallDrop, local || (liveness === "local-stuck" && run.firewallWatcherPresent === true));
  }
  return remoteFirewallDrop(run, remote);
}

/** The drop is past the tunnel on the peer: the fix is applied there, so nothing here is offered. */
function remoteFirewallDrop(run: RunState, remote: PeerFirewallReport | null): Outcome {
  const { ctx } = run;
  ctx.detail.firewallHost = ctx.peer;
  ctx.detail.firewallSide = "remote";
  ctx.detail.peerWatcher = remote === null ? "unknown" : remote.blocking ? "missing" : "intact";
  if (remote !== null) ctx.detail.peerFirewall = remote.summary;
  if (remote?.lastError != null) ctx.detail.peerWatcherError = remote.lastError;
  if (remote !== null) ctx.detail.peerWatcherReadingAgeS = String(remote.readingAgeS);
  return fail(Failure.firewallDrop, false);
}

interface PeerFirewallReport {
  /** A VPN firewall is present and the watcher reports potluck0 accept rules missing. */
  blocking: boolean;
  summary: string;
  evidence: string;
  lastError: string | null;
  /** Seconds since the watcher read the ruleset this status describes. */
  readingAgeS: number;
}

/** The peer's latest fw-watcher status, when one arrived recently enough to describe its firewall now. */
function peerFirewallReport(run: RunState): PeerFirewallReport | null {
  const heard = run.probes.peerFirewall?.latest(run.ctx.peer) ?? null;
  if (heard === null) return null;
  const ageMs = run.clock.now() - heard.receivedAtMs;
  if (ageMs > run.limits.peerFirewallFreshMs) return null;
  const { status } = heard;
  const vpns = Object.entries(status.vpns).filter(([, present]) => present).map(([name]) => name);
  const missing = status.rules.filter((rule) => rule.state === "missing").map((rule) => `${rule.family} ${rule.table} ${rule.chain} ${rule.rule}`);
  // Missing rules, or a watcher that cannot even read or repair them (its error says why).
  const blocking = !status.intact && (missing.length > 0 || status.lastError !== null);
  const summary = !blocking
    ? `the fw-watcher on ${run.ctx.peer} reports its rules intact${vpns.length > 0 ? ` (${vpns.join(", ")} present)` : ""}`
    : missing.length > 0
      ? `the fw-watcher on ${run.ctx.peer} reports the ${vpns.join(" and ") || "VPN"} firewall present and missing: ${missing.join("; ")}`
      : `the fw-watcher on ${run.ctx.peer} cannot read or repair its rules: ${status.lastError}`;
  // The watcher reads the ruleset once a tick: its reading may predate what the probe just met.
  const readingAgeS = Math.max(0, Math.round((run.clock.now() - Date.parse(status.checkedAt)) / 1000));
  return { blocking, summary, evidence: `${summary} (heard ${Math.round(ageMs / 1000)} s ago)`, lastError: status.lastError, readingAgeS };
}

/**
 * Watches potluck0's counters for the peer after an unanswered probe. "alive": the peer's
 * WireGuard sent something (or the coordinator heard its heartbeat just now). "silent": our
 * packets went into the tunnel and nothing came back within a keepalive interval. "local-stuck":
 * our packets never even entered the tunnel.
 */
async function peerLiveness(run: RunState, sentAt: number, stop: AbortSignal): Promise<"alive" | "silent" | "local-stuck"> {
  const { ctx, clock, limits } = run;
  const base = run.tunnelPeer;
  if (base === undefined) {
    // No counters to read (the tunnel layer said why): fall back to the rule of thumb, a timeout
    // over an established mesh is a firewall, and say that it is one.
    ctx.detail.evidence = `${ctx.interfaceName} could not be read to tell a firewall from a powered-off peer`;
    return "alive";
  }
  // The probe has timed out, so its packets (and retransmissions) went into the tunnel by now if
  // they ever will. Less than one of them on the counter: they never left this machine.
  const afterProbe = await readTunnelPeer(run).catch(() => undefined);
  if (afterProbe !== undefined && afterProbe.txBytes - base.txBytes < probePacketBytesMin) return "local-stuck";
  const heartbeat = run.entry?.lastHeartbeatAt;
  if (heartbeat != null && clock.now() - Date.parse(heartbeat) < limits.heartbeatFreshMs) {
    ctx.detail.evidence = `${ctx.peer} is up (the coordinator heard its heartbeat ${Math.round((clock.now() - Date.parse(heartbeat)) / 1000)} s ago)`;
    return "alive";
  }
  if (await underlayAnswers(run, base)) return "alive";
  for (;;) {
    const now = await readTunnelPeer(run).catch(() => undefined);
    if (now !== undefined && (now.rxBytes > base.rxBytes || (now.latestHandshakeAtMs ?? 0) > (base.latestHandshakeAtMs ?? 0))) {
      ctx.detail.evidence = `${ctx.peer}'s WireGuard still answers on ${ctx.interfaceName} (it sent ${now.rxBytes - base.rxBytes} bytes after the probe)`;
      return "alive";
    }
    if (clock.now() - sentAt >= limits.liveWaitMs || stop.aborted) break;
    await clock.sleep(limits.livePollMs);
  }
  ctx.detail.silentS = String(Math.round((clock.now() - sentAt) / 1000));
  return "silent";
}

/**
 * Asks the peer's on-link underlay address whether the host is up. Only for a direct endpoint:
 * a relay answering proves nothing about the peer.
 */
async function underlayAnswers(run: RunState, peer: TunnelPeer): Promise<boolean> {
  const probe = run.probes.underlay;
  const endpoint = peer.endpoint;
  if (probe === undefined || endpoint === null || run.relays.has(endpoint)) return false;
  const ip = endpoint.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  const answered = await probe.hostAnswers(ip, run.ctx.peerPort, timeout(run.limits.underlayTimeoutMs)).catch(() => false);
  if (answered) run.ctx.detail.evidence = `${run.ctx.peer} is up: its address ${ip} on the local network answers while nothing comes back through ${run.ctx.interfaceName}`;
  return answered;
}

/**
 * The smallest packet a probe puts into the tunnel: a TCP SYN (60 bytes of IP) plus WireGuard's
 * 32 bytes of header and tag. A WireGuard keepalive alone is 32 bytes, so a counter that grew by
 * less than this carried no probe.
 */
const probePacketBytesMin = 60 + 32;

async function readTunnelPeer(run: RunState): Promise<TunnelPeer | undefined> {
  const key = run.entry?.wireguardPublicKey;
  const peers = await run.probes.tunnel.peers(run.ctx.interfaceName, timeout(run.limits.wgTimeoutMs));
  return peers.find((p) => p.publicKey === key);
}

/**
 * Asks the local fw-watcher whether a VPN table is present with potluck0 accept rules missing.
 * Records what it said in the run's detail either way; false when there is nothing to consult.
 */
async function localFirewallBlocking(run: RunState): Promise<boolean> {
  const probe = run.probes.firewall;
  if (probe === undefined) return false;
  let status: FwStatus | null;
  try {
    status = await probe.status(timeout(run.limits.firewallTimeoutMs));
  } catch (error) {
    run.ctx.detail.firewall = `the fw-watcher on ${run.ctx.from} did not answer (${describe(error)})`;
    return false;
  }
  if (status === null) return false;
  run.firewallWatcherPresent = true;
  const vpns = Object.entries(status.vpns).filter(([, present]) => present).map(([name]) => name);
  const missing = status.rules.filter((rule) => rule.state === "missing").map((rule) => `${rule.family} ${rule.table} ${rule.chain} ${rule.rule}`);
  if (missing.length === 0) {
    run.ctx.detail.firewall = `the fw-watcher on ${run.ctx.from} reports its rules intact${vpns.length > 0 ? ` (${vpns.join(", ")} present)` : ""}`;
    return false;
  }
  run.ctx.detail.firewall = `the fw-watcher on ${run.ctx.from} reports ${vpns.join(" and ") || "a VPN"} firewall present and missing: ${missing.join("; ")}`;
  return true;
}

function probeModelRuntime(run: RunState): Promise<Outcome> {
  const models = run.models ?? [];
  const wanted = run.requestedModel;
  const chosen = wanted !== undefined ? models.find((m) => m.id === wanted) : (models.find((m) => m.state === "ready") ?? models[0]);
  run.ctx.detail.available = models.map((m) => `${m.id} (${m.state})`).join(", ");
  if (wanted !== undefined) run.ctx.model = wanted;
  if (chosen === undefined) return Promise.resolve(fail(Failure.noModel));
  run.ctx.model = chosen.id;
  if (chosen.state === "loading") {
    if (chosen.progress !== undefined) run.ctx.detail.progress = `${Math.round(chosen.progress * 100)}%`;
    return Promise.resolve(fail(Failure.modelLoading));
  }
  if (chosen.state === "failed") {
    if (chosen.reason !== undefined) run.ctx.detail.reason = chosen.reason;
    return Promise.resolve(fail(Failure.modelFailed));
  }
  return Promise.resolve(ok);
}

function isKind(error: unknown, kind: ProbeErrorKind): boolean {
  return error instanceof ProbeError && error.kind === kind;
}

function isUnauthorized(error: unknown): boolean {
  return error instanceof ProbeError && (error.http?.status === 401 || error.http?.status === 403);
}

function describe(error: unknown): string {
  if (error instanceof ProbeError && error.http !== undefined) {
    return `HTTP ${error.http.status}${error.http.code ? ` ${error.http.code}` : ""}${error.http.message ? `: ${error.http.message}` : ""}`;
  }
  return error instanceof Error ? error.message : String(error);
}
