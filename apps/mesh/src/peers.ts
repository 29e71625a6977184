import type { RosterEntry } from "@potluck/protocol";
import type { PathChange } from "./path-change.js";

/** A peer as potluck0 has it (from `wg show potluck0 dump`). */
export interface WgPeerState {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  latestHandshakeS: number;
  /** Bytes received from the peer: growth is the one sign the direct path carries anything. */
  rxBytes?: number;
}

/** What `wg set` must do to make potluck0's peers match the roster. */
export interface PeerPlan {
  /**
   * `allowedIp`: the machine's /32, and for the hub the spokes' and relayed machines' too,
   * comma-separated as `wg set` takes them; empty for a relayed machine's own peer.
   */
  set: Array<{ publicKey: string; allowedIp: string; endpoint: string | null; name: string }>;
  remove: string[];
  /** Peers whose path changed between direct and the hub in this sync (relay.ts), for the log. */
  paths?: PathChange[];
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
    const [publicKey = "", , endpoint = "(none)", allowed = "(none)", handshake = "0", rx = "0"] = line.split("\t");
    return {
      publicKey,
      endpoint: endpoint === "(none)" ? null : endpoint,
      allowedIps: allowed === "(none)" ? [] : allowed.split(","),
      latestHandshakeS: Number(handshake) || 0,
      rxBytes: Number(rx) || 0,
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
 *
 * With a hub named (`hub`, not this machine): a machine that announced no endpoint is a spoke (a
 * phone, a Windows tunnel service) whose one peer is the hub, so it can answer only through the
 * hub: its address joins the hub peer's allowed IPs instead of being a peer of its own. The hub
 * itself keeps every machine as a direct peer and forwards between them.
 *
 * `relayed`: keys of machines whose direct path is silent (relay.ts). Their /32 joins the hub
 * peer's allowed IPs too, and their own peer stays with no allowed IP, its endpoint and keepalive
 * kept, so it goes on trying the direct path.
 */
export function planPeers(
  current: readonly WgPeerState[],
  roster: readonly RosterEntry[],
  selfId: string,
  hub?: string | null,
  relayed: ReadonlySet<string> = new Set(),
): PeerPlan {
  const others = roster.filter((m) => m.id !== selfId);
  const hubEntry = others.find((m) => m.name === hub);
  const viaHub = (m: RosterEntry) => hubEntry !== undefined && m !== hubEntry && m.endpoints.length === 0;
  const onHub = (m: RosterEntry) => hubEntry !== undefined && m !== hubEntry && relayed.has(m.wireguardPublicKey);
  const wanted = others.filter((m) => !viaHub(m));
  const spokeIps = others.filter((m) => viaHub(m) || onHub(m)).map((m) => `${m.meshIp}/32`);
  const byKey = new Map(current.map((p) => [p.publicKey, p]));
  const wantedKeys = new Set<string>(wanted.map((m) => m.wireguardPublicKey));
  const set: PeerPlan["set"] = [];
  for (const machine of wanted) {
    const own = onHub(machine) ? [] : [`${machine.meshIp}/32`];
    const allowed = [...own, ...(machine === hubEntry ? spokeIps : [])];
    const have = byKey.get(machine.wireguardPublicKey);
    const endpoint = machine.endpoints[0] ?? null;
    const allowedOk = have !== undefined && sameSet(have.allowedIps, allowed);
    const endpointOk = have !== undefined && (have.endpoint !== null || endpoint === null);
    if (!allowedOk || !endpointOk)
      set.push({
        publicKey: machine.wireguardPublicKey,
        allowedIp: allowed.join(","),
        endpoint: endpointOk ? null : endpoint,
        name: machine.name,
      });
  }
  const remove = current.filter((p) => !wantedKeys.has(p.publicKey)).map((p) => p.publicKey);
  return { set, remove };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && b.every((x) => a.includes(x));
}
