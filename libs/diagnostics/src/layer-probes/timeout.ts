import type { Details } from "../detail.js";
import type { dataPlaneCheck } from "../layers.js";
import { Failure } from "../layers.js";
import type { TunnelPeer } from "../probes.js";
import { peerFirewallReport, readLocalFirewall, remoteDropDetail, type LocalFirewall } from "./firewall-evidence.js";
import { fail, timeout, type Learned, type Outcome, type Run } from "./run.js";
import { readTunnelPeer } from "./tunnel.js";

export type DataPlaneKey = (typeof dataPlaneCheck.detailKeys)[number];

/** A classified probe failure, or "cleared": the path answered again while the evidence was gathered. */
export interface Classified {
  outcome: Outcome | "cleared";
  detail: Details<DataPlaneKey>;
}

/**
 * A probe got no answer. Whether the peer's WireGuard still answers tells a firewall drop (the
 * packets die past the tunnel) from a peer that is gone (a recent handshake does not prove it is
 * still there); whether our own packets entered the tunnel tells a local block from a remote one.
 */
export async function classifyTimeout(run: Run, learned: Learned, sentAt: number): Promise<Classified> {
  const { path } = run;
  // This machine's firewall is asked at most once per classification, when first needed.
  let asked: Promise<LocalFirewall> | undefined;
  const localFirewall = () => (asked ??= readLocalFirewall(run));
  // The peer's own fw-watcher saying its accept rules are missing under a VPN firewall is direct
  // evidence (and, being recent, proof the peer is up): no need to wait for WireGuard to tell.
  const remote = peerFirewallReport(run);
  if (remote?.blocking === true) {
    const local = await localFirewall();
    if (!local.blocking)
      return {
        outcome: fail(Failure.firewallDrop, false),
        detail: { ...local.detail, evidence: remote.evidence, ...remoteDropDetail(run, remote) },
      };
  }
  // While waiting for evidence, keep probing: a path that answers again ends the wait as "cleared".
  const stop = new AbortController();
  const cleared = recheckUntil(run, learned, stop.signal).then((passed) => {
    if (passed) stop.abort();
    return passed;
  });
  const liveness = await peerLiveness(run, learned, sentAt, stop.signal);
  stop.abort();
  const earlier = asked === undefined ? {} : (await asked).detail;
  if (await cleared) return { outcome: "cleared", detail: { ...earlier, ...liveness.detail } };
  const local = await localFirewall();
  const detail: Details<DataPlaneKey> = { ...liveness.detail, ...local.detail };
  if (liveness.verdict === "silent" && !local.blocking)
    return { outcome: { kind: "fail", failure: Failure.peerSilent, layer: "tunnel" }, detail };
  if (local.blocking || liveness.verdict === "local-stuck") {
    detail.firewallHost = path.from;
    if (liveness.verdict === "local-stuck")
      detail.evidence = `packets to ${learned.entry?.meshIp} never entered ${path.interfaceName} on ${path.from}`;
    // Our own packets never reach the tunnel: the watcher's reapply (idempotent, scoped) is worth
    // offering even when its last reading predates the block.
    return {
      outcome: fail(
        Failure.firewallDrop,
        local.blocking || (liveness.verdict === "local-stuck" && local.watcherPresent),
      ),
      detail,
    };
  }
  // The drop is past the tunnel on the peer: the fix is applied there, so nothing here is offered.
  return { outcome: fail(Failure.firewallDrop, false), detail: { ...detail, ...remoteDropDetail(run, remote) } };
}

/**
 * Retries the tiny probe until it passes or `stop` aborts, at most one attempt per poll interval
 * (the only retry diagnostics makes, bounded by the liveness wait). Resolves true when it passed.
 */
async function recheckUntil(run: Run, learned: Learned, stop: AbortSignal): Promise<boolean> {
  const { clock, limits } = run;
  while (!stop.aborted) {
    const attemptAt = clock.now();
    try {
      await run.probes.peer.probe(
        learned.target,
        limits.smallProbeBytes,
        AbortSignal.any([stop, timeout(limits.smallProbeTimeoutMs)]),
      );
      return !stop.aborted;
    } catch {
      const restMs = limits.livePollMs - (clock.now() - attemptAt);
      if (restMs > 0 && !stop.aborted) await clock.sleep(restMs);
    }
  }
  return false;
}

interface Liveness {
  verdict: "alive" | "silent" | "local-stuck";
  detail: Details<"evidence" | "silentS">;
}

/**
 * Watches potluck0's counters for the peer after an unanswered probe. "alive": the peer's
 * WireGuard sent something (or the coordinator heard its heartbeat just now). "silent": our
 * packets went into the tunnel and nothing came back within a keepalive interval. "local-stuck":
 * our packets never even entered the tunnel.
 */
async function peerLiveness(run: Run, learned: Learned, sentAt: number, stop: AbortSignal): Promise<Liveness> {
  const { path, clock, limits } = run;
  const base = learned.tunnelPeer;
  if (base === undefined) {
    // No counters to read (the tunnel layer said why): fall back to the rule of thumb, a timeout
    // over an established mesh is a firewall, and say that it is one.
    return {
      verdict: "alive",
      detail: { evidence: `${path.interfaceName} could not be read to tell a firewall from a powered-off peer` },
    };
  }
  // The probe has timed out, so its packets (and retransmissions) went into the tunnel by now if
  // they ever will. Less than one of them on the counter: they never left this machine.
  const afterProbe = await readTunnelPeer(run, learned).catch(() => undefined);
  if (afterProbe !== undefined && afterProbe.txBytes - base.txBytes < probePacketBytesMin)
    return { verdict: "local-stuck", detail: {} };
  const heartbeat = learned.entry?.lastHeartbeatAt;
  if (heartbeat != null && clock.now() - Date.parse(heartbeat) < limits.heartbeatFreshMs) {
    return {
      verdict: "alive",
      detail: {
        evidence: `${path.peer} is up (the coordinator heard its heartbeat ${Math.round((clock.now() - Date.parse(heartbeat)) / 1000)} s ago)`,
      },
    };
  }
  const underlay = await underlayEvidence(run, base, learned.relayVia !== undefined);
  if (underlay !== undefined) return { verdict: "alive", detail: { evidence: underlay } };
  // Bounded by liveWaitMs since the probe was sent, one read per poll interval.
  for (;;) {
    const now = await readTunnelPeer(run, learned).catch(() => undefined);
    if (
      now !== undefined &&
      (now.rxBytes > base.rxBytes || (now.latestHandshakeAtMs ?? 0) > (base.latestHandshakeAtMs ?? 0))
    ) {
      return {
        verdict: "alive",
        detail: {
          evidence: `${path.peer}'s WireGuard still answers on ${path.interfaceName} (it sent ${now.rxBytes - base.rxBytes} bytes after the probe)`,
        },
      };
    }
    if (clock.now() - sentAt >= limits.liveWaitMs || stop.aborted) break;
    await clock.sleep(limits.livePollMs);
  }
  return { verdict: "silent", detail: { silentS: String(Math.round((clock.now() - sentAt) / 1000)) } };
}

/**
 * Asks the peer's on-link underlay address whether the host is up, and says so when it is. Only
 * for a direct endpoint: a relay (or the hub carrying the peer's address) answering proves nothing about the peer.
 */
async function underlayEvidence(run: Run, peer: TunnelPeer, relayed: boolean): Promise<string | undefined> {
  const probe = run.probes.underlay;
  const endpoint = peer.endpoint;
  if (probe === undefined || endpoint === null || run.relays.has(endpoint) || relayed) return undefined;
  const ip = endpoint.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  const answered = await probe
    .hostAnswers(ip, run.path.peerPort, timeout(run.limits.underlayTimeoutMs))
    .catch(() => false);
  return answered
    ? `${run.path.peer} is up: its address ${ip} on the local network answers while nothing comes back through ${run.path.interfaceName}`
    : undefined;
}

/**
 * The smallest packet a probe puts into the tunnel: a TCP SYN (60 bytes of IP) plus WireGuard's
 * 32 bytes of header and tag. A WireGuard keepalive alone is 32 bytes, so a counter that grew by
 * less than this carried no probe.
 */
const probePacketBytesMin = 60 + 32;
