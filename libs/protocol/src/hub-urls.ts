import type { MeshState } from "./coordinator.js";

/**
 * The coordinator as a joined machine reaches it: at the hub's mesh address, over potluck0, once
 * the join saved one; else the URL it enrolled through. Enrollment alone crosses the LAN, and its
 * answers are signed and pinned; every roster poll after it stays inside WireGuard.
 */
export function coordinatorUrlAfterJoin(state: MeshState): string {
  return state.hubMeshIp === undefined ? state.coordinatorUrl : withHost(state.coordinatorUrl, state.hubMeshIp);
}

/**
 * A URL of the hub as a joined machine reaches it (NATS, the coordinator): one naming the hub the
 * way this machine enrolled through it (its LAN address or name) is moved to the hub's mesh
 * address, where the hub's services listen (NATS only there): the household's NATS secret never
 * crosses the LAN. A URL of anything else stays as given.
 */
export function hubUrlAfterJoin(state: MeshState, url: string): string {
  if (state.hubMeshIp === undefined) return url;
  const enrolledVia = new URL(state.coordinatorUrl).hostname;
  return new URL(url).hostname === enrolledVia ? withHost(url, state.hubMeshIp) : url;
}

/** `url` with its host replaced, credentials, port and path kept. */
export function withHost(url: string, host: string): string {
  const parsed = new URL(url);
  parsed.hostname = host;
  return parsed.href.replace(/\/$/, "");
}
