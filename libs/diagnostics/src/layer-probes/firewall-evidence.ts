import type { FwStatus } from "@potluck/protocol";
import type { Details } from "../detail.js";
import { describe } from "./errors.js";
import { timeout, type Run } from "./run.js";

/** What the local fw-watcher said: whether it blocks the mesh, and the sentence the messages show. */
export interface LocalFirewall {
  /** A VPN firewall is present with potluck0 accept rules missing. */
  blocking: boolean;
  /** The watcher answered with a status, so a reapply can be offered. */
  watcherPresent: boolean;
  /** What the watcher said (or that it did not answer); empty when there is no watcher to consult. */
  detail: Details<"firewall">;
}

/** A peer's fw-watcher status recent enough to describe its firewall now. */
export interface PeerFirewallReport {
  /** A VPN firewall is present and the watcher reports potluck0 accept rules missing, or cannot read them. */
  blocking: boolean;
  summary: string;
  /** The summary and how long ago it was heard. */
  evidence: string;
  lastError: string | null;
  /** Seconds since the watcher read the ruleset this status describes. */
  readingAgeS: number;
}

/** Asks the local fw-watcher about this machine's firewall; no watcher, or none answering, is not blocking. */
export async function readLocalFirewall(run: Run): Promise<LocalFirewall> {
  const probe = run.probes.firewall;
  if (probe === undefined) return { blocking: false, watcherPresent: false, detail: {} };
  let status: FwStatus | null;
  try {
    status = await probe.status(timeout(run.limits.firewallTimeoutMs));
  } catch (error) {
    return {
      blocking: false,
      watcherPresent: false,
      detail: { firewall: `the fw-watcher on ${run.path.from} did not answer (${describe(error)})` },
    };
  }
  if (status === null) return { blocking: false, watcherPresent: false, detail: {} };
  const { blocking, summary } = summarize(status, run.path.from, "local");
  return { blocking, watcherPresent: true, detail: { firewall: summary } };
}

/** The peer's latest fw-watcher status, when one arrived recently enough to describe its firewall now. */
export function peerFirewallReport(run: Run): PeerFirewallReport | null {
  const { peer } = run.path;
  const heard = run.probes.peerFirewall?.latest(peer) ?? null;
  if (heard === null) return null;
  const ageMs = run.clock.now() - heard.receivedAtMs;
  if (ageMs > run.limits.peerFirewallFreshMs) return null;
  const { status } = heard;
  const { blocking, summary } = summarize(status, peer, "remote");
  // The watcher reads the ruleset once a tick: its reading may predate what the probe just met.
  const readingAgeS = Math.max(0, Math.round((run.clock.now() - Date.parse(status.checkedAt)) / 1000));
  return {
    blocking,
    summary,
    evidence: `${summary} (heard ${Math.round(ageMs / 1000)} s ago)`,
    lastError: status.lastError,
    readingAgeS,
  };
}

/** The drop is past the tunnel on the peer: what its fw-watcher said, for the message and the fix run there. */
export function remoteDropDetail(
  run: Run,
  remote: PeerFirewallReport | null,
): Details<
  "firewallHost" | "firewallSide" | "peerWatcher" | "peerFirewall" | "peerWatcherError" | "peerWatcherReadingAgeS"
> {
  const detail: ReturnType<typeof remoteDropDetail> = {
    firewallHost: run.path.peer,
    firewallSide: "remote",
    peerWatcher: remote === null ? "unknown" : remote.blocking ? "missing" : "intact",
  };
  if (remote === null) return detail;
  detail.peerFirewall = remote.summary;
  if (remote.lastError !== null) detail.peerWatcherError = remote.lastError;
  detail.peerWatcherReadingAgeS = String(remote.readingAgeS);
  return detail;
}

/**
 * One fw-watcher status in one sentence, for this machine's watcher and a peer's alike. The sides
 * differ on purpose in one respect: a peer's watcher that cannot read or repair its rules counts as
 * blocking (nothing else explains the peer's silence), while this machine's counts only missing
 * rules: a local block its watcher cannot see still shows on the tunnel's counters (see peerLiveness).
 */
function summarize(status: FwStatus, host: string, side: "local" | "remote"): { blocking: boolean; summary: string } {
  const vpns = Object.entries(status.vpns)
    .filter(([, present]) => present)
    .map(([name]) => name);
  const missing = status.rules
    .filter((rule) => rule.state === "missing")
    .map((rule) => `${rule.family} ${rule.table} ${rule.chain} ${rule.rule}`);
  const blocking =
    side === "local" ? missing.length > 0 : !status.intact && (missing.length > 0 || status.lastError !== null);
  const watcher = `the fw-watcher on ${host}`;
  if (!blocking)
    return {
      blocking,
      summary: `${watcher} reports its rules intact${vpns.length > 0 ? ` (${vpns.join(", ")} present)` : ""}`,
    };
  if (missing.length === 0)
    return { blocking, summary: `${watcher} cannot read or repair its rules: ${status.lastError}` };
  const firewall =
    side === "local" ? `${vpns.join(" and ") || "a VPN"} firewall` : `the ${vpns.join(" and ") || "VPN"} firewall`;
  return { blocking, summary: `${watcher} reports ${firewall} present and missing: ${missing.join("; ")}` };
}
