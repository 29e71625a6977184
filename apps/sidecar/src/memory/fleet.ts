import { PeerCallError, PeerErrorKind, type PeerClient } from "@potluck/peer";
import {
  MemoryLimits,
  MemorySearchResponse,
  type MachineAnswer,
  type MemorySearchHit,
  type PeerMemorySearchRequest,
} from "@potluck/protocol";

/** A machine on the roster that may be asked a peer memory search; `url` is its sidecar on the mesh. */
export interface FleetPeer {
  machine: string;
  /** Its owner on the roster: only own machines, and owners a project is shared with, are asked. */
  owner: string;
  url: string;
}

/** Where the peer list comes from: a static roster now, the coordinator's roster later. */
export interface FleetRoster {
  peers(): Promise<FleetPeer[]>;
}

export type PeerOutcome =
  | { status: "answered"; hits: MemorySearchHit[] }
  | { status: "disabled" | "unreachable" | "timeout" | "error"; reason: string };

/** Asks one peer's POST /peer/memory/search; must honour `signal` (the fleet deadline). */
export type PeerSearcher = (
  peer: FleetPeer,
  body: PeerMemorySearchRequest,
  signal: AbortSignal,
) => Promise<PeerOutcome>;

/** A fixed list of peers (tests). */
export function staticRoster(peers: readonly FleetPeer[]): FleetRoster {
  return { peers: () => Promise.resolve([...peers]) };
}

/** Peer memory search through the one peer client (signed); a 503 means the peer has not opted in. */
export function httpPeerSearcher(client: Pick<PeerClient, "memorySearch">): PeerSearcher {
  return async (peer, body, signal) => {
    try {
      const answer = await client.memorySearch(peer, body, signal);
      // A peer speaks for itself only: hits claiming another machine are relabelled, not trusted.
      return { status: "answered", hits: answer.hits.map((hit) => ({ ...hit, machine: peer.machine })) };
    } catch (error) {
      return outcomeOf(error, signal);
    }
  };
}

/**
 * Fans a search out to the peers in the roster that `allowed` lets answer it (never this machine;
 * the others are not asked, so the query text never reaches them), at most `deadlineMs` long:
 * a peer that has not answered by then is reported as "timeout" and its request aborted. Hits
 * merge by score; every machine asked appears in `machines` with how it answered.
 */
export async function fleetSearch({
  self,
  local,
  roster,
  allowed,
  search,
  body,
  deadlineMs = MemoryLimits.fleetDeadlineMsDefault,
  limit,
}: {
  self: string;
  local: MemorySearchHit[];
  roster: FleetRoster;
  allowed: (peer: FleetPeer) => boolean;
  search: PeerSearcher;
  body: PeerMemorySearchRequest;
  deadlineMs?: number;
  limit: number;
}): Promise<MemorySearchResponse> {
  const peers = (await roster.peers())
    .filter((peer) => peer.machine !== self && allowed(peer))
    .slice(0, MemoryLimits.fleetPeersMax);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), Math.min(deadlineMs, MemoryLimits.fleetDeadlineMsMax));
  try {
    const outcomes = await Promise.all(peers.map((peer) => askOne(peer, body, search, deadline.signal)));
    const machines: MachineAnswer[] = [{ machine: self, status: "answered", hits: local.length }];
    const hits = [...local];
    outcomes.forEach(({ outcome, latencyMs }, i) => {
      const machine = peers[i]?.machine ?? "unknown";
      if (outcome.status === "answered") {
        hits.push(...outcome.hits);
        machines.push({ machine, status: "answered", hits: outcome.hits.length, latencyMs });
      } else {
        machines.push({ machine, status: outcome.status, reason: outcome.reason, hits: 0, latencyMs });
      }
    });
    return { hits: mergeByScore(hits, limit), machines };
  } finally {
    clearTimeout(timer);
  }
}

/** Best `limit` unpinned hits across machines, plus every pinned hit (pinned are always included). */
export function mergeByScore(hits: readonly MemorySearchHit[], limit: number): MemorySearchHit[] {
  const sorted = [...hits].sort((a, b) => b.score - a.score);
  let unpinned = 0;
  return sorted.filter((hit) => hit.record.pinned || unpinned++ < limit);
}

async function askOne(
  peer: FleetPeer,
  body: PeerMemorySearchRequest,
  search: PeerSearcher,
  signal: AbortSignal,
): Promise<{ outcome: PeerOutcome; latencyMs: number }> {
  const started = performance.now();
  // The deadline wins even against a searcher that ignores its signal.
  const timedOut = new Promise<PeerOutcome>((resolve) => {
    if (signal.aborted) resolve({ status: "timeout", reason: "no answer before the fleet deadline" });
    signal.addEventListener(
      "abort",
      () => resolve({ status: "timeout", reason: "no answer before the fleet deadline" }),
      { once: true },
    );
  });
  const outcome = await Promise.race([
    search(peer, body, signal).catch((error: unknown): PeerOutcome => ({
      status: "error",
      reason: error instanceof Error ? error.message : String(error),
    })),
    timedOut,
  ]);
  return { outcome, latencyMs: performance.now() - started };
}

/** A failed search as the fleet reports it: how the peer answered, in its own words where it gave some. */
function outcomeOf(error: unknown, signal: AbortSignal): PeerOutcome {
  if (signal.aborted) return { status: "timeout", reason: "no answer before the fleet deadline" };
  if (!(error instanceof PeerCallError))
    return { status: "error", reason: error instanceof Error ? error.message : String(error) };
  if (error.status === 503)
    return { status: "disabled", reason: error.serverMessage ?? "peer memory search is off on that machine" };
  if (error.kind === PeerErrorKind.http)
    return { status: "error", reason: `HTTP ${error.status ?? 0}: ${error.serverMessage ?? "no error body"}` };
  if (error.kind === PeerErrorKind.invalid) return { status: "error", reason: error.message };
  return { status: "unreachable", reason: error.message };
}
