import type { RosterEntry } from "@potluck/protocol";
import { parseWgDump, planPeers, type PeerPlan } from "../peers.js";
import type { RelayTracker } from "../relay.js";
import type { Probe, Step } from "./plan.js";
import { persistentKeepaliveS } from "../keepalive.js";

export { persistentKeepaliveS } from "../keepalive.js";

/**
 * The `wg set` steps that make `dev`'s peers match the roster (Linux and macOS: a direct peer per
 * machine). `dev` may be a variable (`$UTUN`) when the device does not exist yet: then it has no
 * peers to read and every machine is added.
 *
 * With `relay` (the Linux agent following the roster): a peer whose direct path is silent rides
 * on the hub's peer (relay.ts decides), and a relayed peer due a retry is removed and added again
 * (it carries no address then, so nothing is lost): a new peer with a keepalive starts a fresh
 * handshake at once, which WireGuard stops doing by itself 90 s after the last answer.
 */
export async function peerSteps(
  probe: Probe,
  dev: string,
  roster: readonly RosterEntry[],
  selfId: string,
  deviceExists: boolean,
  hub?: string | null,
  relay?: RelayTracker,
): Promise<{ steps: Step[]; peers: PeerPlan }> {
  let current: ReturnType<typeof parseWgDump>["peers"] = [];
  if (deviceExists) {
    const dump = await probe.run(["wg", "show", dev, "dump"]);
    // Unreadable (a dry run without root): planned as if empty; `wg set` of an existing peer is harmless.
    if (dump.code === 0) current = parseWgDump(dump.stdout).peers;
  }
  const decision = relay?.decide(current, roster, hub);
  const peers = planPeers(current, roster, selfId, hub, decision?.viaHub);
  if (decision !== undefined && decision.changes.length > 0) peers.paths = decision.changes;
  const steps: Step[] = peers.remove.map((key) => ({
    kind: "run",
    argv: ["wg", "set", dev, "peer", key, "remove"],
    why: `removing a peer no longer on the roster from ${dev}`,
  }));
  for (const { publicKey, endpoint } of decision?.retry ?? []) {
    const name = roster.find((m) => m.wireguardPublicKey === publicKey)?.name ?? publicKey;
    steps.push(
      {
        kind: "run",
        argv: ["wg", "set", dev, "peer", publicKey, "remove"],
        why: `retrying ${name} directly: its old session goes`,
      },
      {
        kind: "run",
        argv: [
          "wg",
          "set",
          dev,
          "peer",
          publicKey,
          "allowed-ips",
          "",
          "persistent-keepalive",
          String(persistentKeepaliveS),
          "endpoint",
          endpoint,
        ],
        why: `retrying ${name} directly: a fresh handshake to ${endpoint} (its address stays on the hub until one comes)`,
      },
    );
  }
  for (const peer of peers.set) {
    const argv = ["wg", "set", dev, "peer", peer.publicKey, "allowed-ips", peer.allowedIp];
    argv.push("persistent-keepalive", String(persistentKeepaliveS));
    if (peer.endpoint !== null) argv.push("endpoint", peer.endpoint);
    steps.push({ kind: "run", argv, why: `adding peer ${peer.name} to ${dev}` });
  }
  return { steps, peers };
}
