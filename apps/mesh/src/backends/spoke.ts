import { Defaults, type MeshState, type Roster, type RosterEntry } from "@potluck/protocol";
import { persistentKeepaliveS } from "./peer-steps.js";

/**
 * The hub a spoke tunnels to: the roster machine the coordinator names (POTLUCK_HUB_MACHINE on
 * the hub). Throws saying what the hub's admin must do when the roster names none or it cannot be used.
 */
export function hubOf(roster: Roster, state: MeshState): RosterEntry {
  const fix =
    "on the hub, join its own mesh (potluck join http://127.0.0.1:PORT TOKEN --endpoint LAN_IP:51820) " +
    "and start the coordinator with POTLUCK_HUB_MACHINE set to that machine's name";
  if (roster.hub === undefined || roster.hub === null)
    throw new Error(`the coordinator at ${state.coordinatorUrl} names no hub machine for spokes: ${fix}`);
  const hub = roster.machines.find((m) => m.name === roster.hub);
  if (hub === undefined) throw new Error(`the hub machine "${roster.hub}" is not on the roster: ${fix}`);
  if (hub.id === state.machineId)
    throw new Error(`${state.name} is the hub itself: it cannot be its own spoke; use --mesh linux`);
  if (hub.endpoints[0] === undefined)
    throw new Error(
      `the hub "${hub.name}" has no WireGuard endpoint on the roster: re-join it with --endpoint HOST:51820`,
    );
  return hub;
}

/**
 * A standard wg-quick config for a spoke: this machine's key and mesh address, and one peer, the
 * hub, with the whole mesh as AllowedIPs, so it never changes as machines join or leave. Keepalive
 * keeps the hub able to reach a spoke behind NAT (a phone, a laptop at a café). No ListenPort: the
 * spoke always starts the handshake, and the hub answers wherever it comes from.
 */
export function spokeConfig(state: MeshState, hub: RosterEntry, privateKey: string): string {
  return [
    "[Interface]",
    `# potluck: ${state.name} on the mesh of ${state.coordinatorUrl}, through the hub ${hub.name}`,
    `PrivateKey = ${privateKey}`,
    `Address = ${state.meshIp}/32`,
    `MTU = ${state.mtu}`,
    "",
    "[Peer]",
    `# the hub ${hub.name} (${hub.meshIp})`,
    `PublicKey = ${hub.wireguardPublicKey}`,
    `AllowedIPs = ${Defaults.meshCidr}`,
    `Endpoint = ${hub.endpoints[0] ?? ""}`,
    `PersistentKeepalive = ${persistentKeepaliveS}`,
    "",
  ].join("\n");
}
