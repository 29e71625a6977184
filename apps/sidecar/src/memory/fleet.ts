import {
  ErrorBody,
  MemoryLimits,
  MemorySearchResponse,
  type MachineAnswer,
  type MemorySearchHit,
  type PeerMemorySearchRequest,
} from "@potluck/protocol";

/** An own machine that may answer peer memory search; `url` is its sidecar on the mesh. */
export interface FleetPeer {
  machine: string;
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
export type PeerSearcher = (peer: FleetPeer, body: PeerMemorySearchRequest, signal: AbortSignal) => Promise<PeerOutcome>;

/** Signs an outgoing peer request: returns the headers to add (machine, timestamp, nonce, signature). */
export type RequestSigner = (request: { method: string; path: string; body: string }) => Record<string, string> | Promise<Record<string, string>>;

/** Static roster from POTLUCK_MEMORY_PEERS ("linux=http://100.64.0.3:8321,windows=…"). */
export function staticRoster(peers: readonly FleetPeer[]): FleetRoster {
  return { peers: () => Promise.resolve([...peers]) };
}

export function parsePeerList(text: string): FleetPeer[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
    .map((item) => {
      const eq = item.indexOf("=");
      if (eq <= 0) throw new Error(`expected machine=url, got "${item}"`);
      const url = new URL(item.slice(eq + 1)).href.replace(/\/$/, "");
      return { machine: item.slice(0, eq), url };
    });
}

/** Peer memory search over HTTP, signed; a 503 means the peer has not opted in. */
export function httpPeerSearcher({ sign }: { sign: RequestSigner }): PeerSearcher {
  const path = "/peer/memory/search";
  return async (peer, body, signal) => {
    const text = JSON.stringify(body);
    let res: Response;
    try {
      const headers = { "content-type": "application/json", ...(await sign({ method: "POST", path, body: text })) };
      res = await fetch(`${peer.url}${path}`, { method: "POST", headers, body: text, signal });
    } catch (error) {
      if (signal.aborted) return { status: "timeout", reason: "no answer before the fleet deadline" };
      return { status: "unreachable", reason: describeFetchError(error) };
    }
    const payload: unknown = await res.json().catch(() => undefined);
    if (res.status === 503) return { status: "disabled", reason: errorMessage(payload) ?? "peer memory search is off on that machine" };
    if (!res.ok) return { status: "error", reason: `HTTP ${res.status}: ${errorMessage(payload) ?? "no error body"}` };
    const parsed = MemorySearchResponse.safeParse(payload);
    if (!parsed.success) return { status: "error", reason: `malformed answer: ${parsed.error.issues[0]?.message ?? "invalid"}` };
    // A peer speaks for itself only: hits claiming another machine are relabelled, not trusted.
    return { status: "answered", hits: parsed.data.hits.map((hit) => ({ ...hit, machine: peer.machine })) };
  };
}

/**
 * Fans a search out to every peer in the roster (not this machine), at most `deadlineMs` long:
 * a peer that has not answered by then is reported as "timeout" and its request aborted. Hits
 * merge by score; every machine asked appears in `machines` with how it answered.
 */
export async function fleetSearch({
  self,
  local,
  roster,
  search,
  body,
  deadlineMs = MemoryLimits.fleetDeadlineMsDefault,
  limit,
}: {
  self: string;
  local: MemorySearchHit[];
  roster: FleetRoster;
  search: PeerSearcher;
  body: PeerMemorySearchRequest;
  deadlineMs?: number;
  limit: number;
}): Promise<MemorySearchResponse> {
  const peers = (await roster.peers()).filter((peer) => peer.machine !== self).slice(0, MemoryLimits.fleetPeersMax);
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

async function askOne(peer: FleetPeer, body: PeerMemorySearchRequest, search: PeerSearcher, signal: AbortSignal): Promise<{ outcome: PeerOutcome; latencyMs: number }> {
  const started = performance.now();
  // The deadline wins even against a searcher that ignores its signal.
  const timedOut = new Promise<PeerOutcome>((resolve) => {
    if (signal.aborted) resolve({ status: "timeout", reason: "no answer before the fleet deadline" });
    signal.addEventListener("abort", () => resolve({ status: "timeout", reason: "no answer before the fleet deadline" }), { once: true });
  });
  const outcome = await Promise.race([
    search(peer, body, signal).catch((error: unknown): PeerOutcome => ({ status: "error", reason: error instanceof Error ? error.message : String(error) })),
    timedOut,
  ]);
  return { outcome, latencyMs: performance.now() - started };
}

function errorMessage(payload: unknown): string | undefined {
  const parsed = ErrorBody.safeParse(payload);
  return parsed.success ? parsed.data.error.message : undefined;
}

function describeFetchError(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return typeof code === "string" ? `${code}: ${message}` : message;
}
