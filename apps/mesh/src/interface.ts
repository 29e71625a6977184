import { Defaults, type MeshState, type RosterEntry } from "@potluck/protocol";
import { linuxInterfaceSteps } from "./backends/linux.js";
import { peerSteps } from "./backends/peer-steps.js";
import { emptyPeerPlan, executePlan, machineProbe } from "./backends/plan.js";
import type { Runner } from "./exec.js";
import { parseWgDump, type PeerPlan } from "./peers.js";

export { persistentKeepaliveS } from "./backends/peer-steps.js";

/**
 * Brings `potluck0` up as the roster says, the Linux backend's way (backends/linux.ts): kernel
 * WireGuard or wireguard-go when the interface does not exist, this machine's private key and
 * listen port, its mesh address, MTU 1280, link up. Idempotent: running it on an interface that
 * is already right changes nothing.
 */
export async function bringUpInterface(run: Runner, state: MeshState, privateKeyPath: string): Promise<void> {
  const { steps } = await linuxInterfaceSteps(machineProbe(run), state, privateKeyPath);
  await executePlan(
    { backend: "linux", steps, shell: "sh", device: state.interfaceName, peers: emptyPeerPlan(), notes: [] },
    { run },
  );
}

/** Makes the device's peers match the roster (Linux's potluck0, macOS's utun); returns what changed. */
export async function syncPeers(
  run: Runner,
  dev: string,
  roster: readonly RosterEntry[],
  selfId: string,
  hub?: string | null,
): Promise<PeerPlan> {
  const { steps, peers } = await peerSteps(machineProbe(run), dev, roster, selfId, true, hub);
  await executePlan({ backend: "linux", steps, shell: "sh", device: dev, peers, notes: [] }, { run });
  return peers;
}

/** The public key potluck0 actually uses: what heartbeats report, so a stale roster key shows. */
export async function interfacePublicKey(run: Runner, dev: string = Defaults.interfaceName): Promise<string | null> {
  const result = await run(["wg", "show", dev, "public-key"]);
  return result.code === 0 ? result.stdout.trim() : null;
}

/** Latest handshake per peer key (epoch seconds, 0 = never), or null when the interface is down. */
export async function latestHandshakes(run: Runner, dev: string): Promise<Map<string, number> | null> {
  const result = await run(["wg", "show", dev, "dump"]);
  if (result.code !== 0) return null;
  return new Map(parseWgDump(result.stdout).peers.map((p) => [p.publicKey, p.latestHandshakeS]));
}
