import type { RosterEntry } from "@potluck/protocol";

/** A peer as potluck0 has it (from `wg show potluck0 dump`). */
export interface WgPeerState {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  latestHandshakeS: number;
}

/** What `wg set` must do to make potluck0's peers match the roster. */
export interface PeerPlan {
  set: Array<{ publicKey: string; allowedIp: string; endpoint: string | null; name: string }>;
  remove: string[];
}

/** Parses `wg show IFACE dump`: the interface line first, then one line per peer. */
export function parseWgDump(dump: string): {
  publicKey: string | null;
  listenPort: number | null;
  peers: WgPeerState[];
} {
  const lines = dump.split("\n").filter((l) => l.trim() !== "");
  const [head, ...rest] = lines;
  const headFields = head?.split("\t") ?? [];
  const peers = rest.map((line) => {
    const [publicKey = "", , endpoint = "(none)", allowed = "(none)", handshake = "0"] = line.split("\t");
    return {
      publicKey,
      endpoint: endpoint === "(none)" ? null : endpoint,
      allowedIps: allowed === "(none)" ? [] : allowed.split(","),
      latestHandshakeS: Number(handshake) || 0,
    };
  });
  return {
    publicKey: headFields[1] ?? null,
    listenPort: headFields[2] === undefined ? null : Number(headFields[2]),
    peers,
  };
}

/**
 * The peer changes that bring `current` in line with the roster: every other machine is a peer
 * with exactly its mesh address as allowed IP; peers no longer on the roster go. An endpoint is
 * set only for a new peer or one without any: WireGuard roams, and a peer seen at another
 * address (NAT) must not be pulled back to a stale one.
 */
export function planPeers(current: readonly WgPeerState[], roster: readonly RosterEntry[], selfId: string): PeerPlan {
  const wanted = roster.filter((m) => m.id !== selfId);
  const byKey = new Map(current.map((p) => [p.publicKey, p]));
  const wantedKeys = new Set<string>(wanted.map((m) => m.wireguardPublicKey));
  const set: PeerPlan["set"] = [];
  for (const machine of wanted) {
    const allowedIp = `${machine.meshIp}/32`;
    const have = byKey.get(machine.wireguardPublicKey);
    const endpoint = machine.endpoints[0] ?? null;
    const allowedOk = have !== undefined && have.allowedIps.length === 1 && have.allowedIps[0] === allowedIp;
    const endpointOk = have !== undefined && (have.endpoint !== null || endpoint === null);
    if (!allowedOk || !endpointOk)
      set.push({
        publicKey: machine.wireguardPublicKey,
        allowedIp,
        endpoint: endpointOk ? null : endpoint,
        name: machine.name,
      });
  }
  const remove = current.filter((p) => !wantedKeys.has(p.publicKey)).map((p) => p.publicKey);
  return { set, remove };
}
