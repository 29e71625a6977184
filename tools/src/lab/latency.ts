import { join } from "node:path";
import { repoRoot } from "../lib/repo.js";
import { meshDev } from "./names.js";
import { pollUntil } from "./run.js";
import type { LabHost, Undo } from "./types.js";

/**
 * Adds `oneWayMs` of delay each way to the mesh path between two lab hosts, as a slower household
 * link would (Wi-Fi, a relayed path); this kernel has no netem. `from`'s WireGuard is pointed at a
 * UDP relay on its own loopback (udp-delay-relay.ts) that holds each datagram and passes it on to
 * `to`'s real endpoint; `to` answers the relay, as WireGuard follows a peer's latest source address.
 * The undo points `from` back at `to` directly and stops the relay.
 */
export async function delayMeshPath(from: LabHost, to: LabHost, oneWayMs: number, relayPort = 51_900): Promise<Undo> {
  if (to.wgPublicKey === null || to.wgListenPort === null)
    throw new Error(`${to.name} has no WireGuard endpoint to delay`);
  const peerKey = to.wgPublicKey;
  const direct = `${to.underlayIp}:${to.wgListenPort}`;
  const relay = from.spawn(
    "udp-delay",
    [
      process.execPath,
      "--import",
      "tsx",
      join(repoRoot, "tools/src/lab/udp-delay-relay.ts"),
      String(relayPort),
      to.underlayIp,
      String(to.wgListenPort),
      String(oneWayMs),
    ],
    { cwd: repoRoot },
  );
  const setEndpoint = async (endpoint: string) => {
    const result = await from.exec(["wg", "set", meshDev, "peer", peerKey, "endpoint", endpoint]);
    if (result.code !== 0) throw new Error(`pointing ${from.name}'s WireGuard at ${endpoint}: ${result.stderr.trim()}`);
  };
  try {
    if (!(await pollUntil(() => relay.output().includes("listening"), { timeoutMs: 30_000, intervalMs: 50 })))
      throw new Error(`the delay relay in ${from.name} did not start: ${relay.output().slice(-500)}`);
    await setEndpoint(`127.0.0.1:${relayPort}`);
  } catch (error) {
    await relay.stop();
    throw error;
  }
  return async () => {
    await setEndpoint(direct);
    await relay.stop();
  };
}
