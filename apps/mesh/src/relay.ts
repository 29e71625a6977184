import type { RosterEntry } from "@potluck/protocol";
import { persistentKeepaliveS } from "./keepalive.js";
import type { WgPeerState } from "./peers.js";
import type { PathChange, PathMode } from "./path-change.js";

/**
 * Direct first, the hub when the direct path is silent: a Linux machine keeps a direct WireGuard
 * peer per machine, and when nothing has come from a peer directly for a while, that peer's /32
 * moves onto the hub's peer (WireGuard routes each address to exactly one peer), so traffic to it
 * rides through the hub's forwarding. The direct peer stays configured, with no address, and is
 * re-added now and then so it keeps trying; the first direct handshake after the move brings the
 * /32 back. The state lives here, between roster syncs; what WireGuard shows is read each time.
 */

/**
 * WireGuard retransmits a handshake initiation every 5 s (REKEY_TIMEOUT): three tries without an
 * answer is a path that is not there, not a lost packet.
 */
export const firstHandshakeWaitMs = 15_000;
/**
 * Every direct peer has a persistent keepalive, so a working path brings something from the peer
 * at least every `persistentKeepaliveS`; two missed keepalives plus slack for timer jitter and
 * the sync interval is a silent path, not a quiet one.
 */
export const directSilentMs = (2 * persistentKeepaliveS + 5) * 1000;
/**
 * While relayed, the direct peer is re-added this often: WireGuard itself gives up retrying a
 * handshake after 90 s (REKEY_ATTEMPT_TIME), and a re-added peer with a keepalive starts a fresh
 * handshake at once. Under the keepalive interval, so a path that comes back is found within about
 * this long plus one sync.
 */
export const directRetryMs = 20_000;

export type { PathChange, PathMode } from "./path-change.js";

export interface RelayDecision {
  /** Keys of the peers whose /32 rides on the hub's peer now. */
  viaHub: ReadonlySet<string>;
  /** Relayed peers to re-add now, with the endpoint to try (so a fresh direct handshake starts). */
  retry: Array<{ publicKey: string; endpoint: string }>;
  changes: PathChange[];
}

interface PeerPath {
  mode: PathMode;
  /** When the current mode began (ms); for a direct peer, when it was first seen. */
  sinceMs: number;
  rxBytes: number;
  /** When rxBytes last grew (ms), or when the peer was first seen. */
  rxChangedAtMs: number;
  /** When the direct peer was last re-added (ms), while relayed. */
  retriedAtMs: number;
}

export interface RelayOptions {
  /** This machine's roster name. */
  self: string;
  nowMs?: () => number;
}

/**
 * The per-peer choice between the direct path and the hub. `decide` is called once per roster
 * sync with `wg show dump`'s peers; its state holds one entry per roster machine at most (peers
 * that left the roster are forgotten).
 */
export class RelayTracker {
  readonly #paths = new Map<string, PeerPath>();
  readonly #now: () => number;

  constructor(private readonly options: RelayOptions) {
    this.#now = options.nowMs ?? Date.now;
  }

  /** The current mode of the peer with `publicKey` (direct when never seen). */
  mode(publicKey: string): PathMode {
    return this.#paths.get(publicKey)?.mode ?? "direct";
  }

  decide(
    current: readonly WgPeerState[],
    machines: readonly RosterEntry[],
    hub: string | null | undefined,
  ): RelayDecision {
    const now = this.#now();
    const viaHub = new Set<string>();
    const decision: RelayDecision = { viaHub, retry: [], changes: [] };
    const candidates = relayCandidates(machines, hub, this.options.self);
    const keys = new Set<string>(candidates.map((m) => m.wireguardPublicKey));
    for (const key of this.#paths.keys()) if (!keys.has(key)) this.#paths.delete(key);
    const byKey = new Map<string, WgPeerState>(current.map((p) => [p.publicKey, p]));
    for (const machine of candidates) {
      const key = machine.wireguardPublicKey;
      const peer = byKey.get(key);
      let path = this.#paths.get(key);
      if (path === undefined) {
        path = {
          mode: "direct",
          sinceMs: now,
          rxBytes: peer?.rxBytes ?? 0,
          rxChangedAtMs: now,
          retriedAtMs: Number.NEGATIVE_INFINITY,
        };
        this.#paths.set(key, path);
      }
      if (peer !== undefined && (peer.rxBytes ?? 0) !== path.rxBytes) {
        path.rxBytes = peer.rxBytes ?? 0;
        path.rxChangedAtMs = now;
      }
      const change = path.mode === "direct" ? this.#whenDirect(path, peer, now) : this.#whenRelayed(path, peer, now);
      if (change !== null) decision.changes.push({ name: machine.name, ...change });
      if (path.mode === "hub") {
        viaHub.add(key);
        if (now - path.retriedAtMs >= directRetryMs) {
          path.retriedAtMs = now;
          const endpoint = peer?.endpoint ?? machine.endpoints[0];
          if (endpoint !== undefined) decision.retry.push({ publicKey: key, endpoint });
        }
      }
    }
    return decision;
  }

  #whenDirect(path: PeerPath, peer: WgPeerState | undefined, now: number): Omit<PathChange, "name"> | null {
    // Not configured yet: the plan adds it now, and the wait starts with it.
    if (peer === undefined) return null;
    const handshaken = peer.latestHandshakeS > 0;
    const waitMs = handshaken ? directSilentMs : firstHandshakeWaitMs;
    const silentMs = now - path.rxChangedAtMs;
    if (silentMs < waitMs) return null;
    path.mode = "hub";
    path.sinceMs = now;
    // Retried at once: the old session may still be valid, and only a new handshake proves the path.
    path.retriedAtMs = Number.NEGATIVE_INFINITY;
    return {
      to: "hub",
      reason: handshaken
        ? `nothing received directly for ${Math.round(silentMs / 1000)} s`
        : `no direct handshake within ${Math.round(silentMs / 1000)} s`,
    };
  }

  #whenRelayed(path: PeerPath, peer: WgPeerState | undefined, now: number): Omit<PathChange, "name"> | null {
    // Handshake times are whole seconds: one in the second of the move counts, which at worst
    // brings back a path that answered a moment before it was judged silent.
    if (peer === undefined || peer.latestHandshakeS * 1000 < Math.floor(path.sinceMs / 1000) * 1000) return null;
    path.mode = "direct";
    path.sinceMs = now;
    path.rxChangedAtMs = now;
    return {
      to: "direct",
      reason: `direct handshake ${Math.max(0, Math.round(now / 1000 - peer.latestHandshakeS))} s ago`,
    };
  }
}

/**
 * The machines that may fall back: only with a hub named that is not this machine (the hub
 * itself has every machine as a direct peer and does the forwarding), and only those with a
 * direct peer of their own (an endpoint; the endpoint-less spokes already ride on the hub).
 */
export function relayCandidates(
  machines: readonly RosterEntry[],
  hubName: string | null | undefined,
  self: string,
): RosterEntry[] {
  const hub = machines.find((m) => m.name === hubName);
  if (hub === undefined || hub.name === self || hub.endpoints.length === 0) return [];
  return machines.filter((m) => m.name !== self && m !== hub && m.endpoints.length > 0);
}
