import { networkInterfaces } from "node:os";
import type { MeshState } from "@potluck/protocol";

/**
 * Where `potluck up --hub` starts nats-server: on the hub's mesh address once its own machine
 * joined its mesh (the roster names it the hub: `hubMeshIp` is its own `meshIp`), so a machine on
 * the LAN cannot even connect and joined machines reach it inside WireGuard; on every interface
 * for a hub that never joined its mesh (machines then use its LAN address, as before).
 * `addressUp` says whether potluck0 carries the address yet: nats-server cannot bind it before.
 */
export type HubNatsListen =
  { kind: "mesh"; address: string } | { kind: "lan" } | { kind: "mesh-down"; address: string };

export function hubNatsListen(state: MeshState | undefined, addressUp: (ip: string) => boolean): HubNatsListen {
  if (state?.hubMeshIp === undefined || state.hubMeshIp !== state.meshIp) return { kind: "lan" };
  return addressUp(state.meshIp)
    ? { kind: "mesh", address: state.meshIp }
    : { kind: "mesh-down", address: state.meshIp };
}

/** Whether one of this machine's interfaces carries `ip`. */
export function localAddress(ip: string): boolean {
  return Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === ip) ?? false);
}
