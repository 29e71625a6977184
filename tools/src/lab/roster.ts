import type { RosterEntry } from "@potluck/protocol";
import type { LabHost } from "./types.js";

/**
 * A lab host as the coordinator's roster would list it, for tests and benches that give the
 * sidecars a static roster file instead of running a coordinator.
 */
export function labRosterEntry(host: LabHost, identityPublicKey: string, owner = "home"): RosterEntry {
  if (host.meshIp === null || host.wgPublicKey === null) throw new Error(`${host.name} has no mesh address`);
  return {
    id: `lab-${host.name}`,
    name: host.name,
    owner,
    meshIp: host.meshIp,
    wireguardPublicKey: host.wgPublicKey as RosterEntry["wireguardPublicKey"],
    identityPublicKey: identityPublicKey as RosterEntry["identityPublicKey"],
    endpoints: [`${host.underlayIp}:${host.wgListenPort ?? 51820}`],
    state: "online",
    lastHeartbeatAt: null,
    staleKey: false,
  };
}
