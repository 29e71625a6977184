import { Defaults, type MeshState, type RosterEntry } from "@potluck/protocol";
import { runOrThrow, type Runner } from "./exec.js";
import { parseWgDump, planPeers, type PeerPlan } from "./peers.js";

/** wireguard-go creates its interface and UAPI socket within a second; allow for a loaded machine. */
const interfaceReadyTimeoutMs = 30_000;
const interfacePollMs = 100;
/** Keeps NAT mappings open so peers behind home routers stay reachable (WireGuard's usual 25 s). */
export const persistentKeepaliveS = 25;

/**
 * Brings `potluck0` up as the roster says: wireguard-go (userspace; no kernel module needed)
 * when the interface does not exist, this machine's private key and listen port, its mesh
 * address, MTU 1280, link up. Idempotent: running it on an interface that is already right
 * changes nothing.
 */
export async function bringUpInterface(run: Runner, state: MeshState, privateKeyPath: string): Promise<void> {
  const dev = state.interfaceName;
  if ((await run(["ip", "link", "show", "dev", dev])).code !== 0) {
    await runOrThrow(run, `starting wireguard-go for ${dev}`, ["wireguard-go", dev]);
    const deadline = Date.now() + interfaceReadyTimeoutMs;
    while ((await run(["wg", "show", dev, "public-key"])).code !== 0) {
      if (Date.now() > deadline)
        throw new Error(`starting wireguard-go for ${dev}: no UAPI socket after ${interfaceReadyTimeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, interfacePollMs));
    }
  }
  await runOrThrow(run, `setting ${dev}'s key and port`, [
    "wg",
    "set",
    dev,
    "private-key",
    privateKeyPath,
    "listen-port",
    String(state.listenPort),
  ]);
  const address = `${state.meshIp}/${state.prefixLength}`;
  const addrs = await runOrThrow(run, `reading ${dev}'s addresses`, ["ip", "-4", "-o", "addr", "show", "dev", dev]);
  if (!addrs.includes(` ${address} `)) {
    await runOrThrow(run, `clearing ${dev}'s old addresses`, ["ip", "-4", "addr", "flush", "dev", dev]);
    await runOrThrow(run, `giving ${dev} its mesh address`, ["ip", "addr", "add", address, "dev", dev]);
  }
  await runOrThrow(run, `bringing ${dev} up`, ["ip", "link", "set", dev, "mtu", String(state.mtu), "up"]);
}

/** Makes potluck0's peers match the roster; returns what changed. */
export async function syncPeers(
  run: Runner,
  dev: string,
  roster: readonly RosterEntry[],
  selfId: string,
): Promise<PeerPlan> {
  const dump = parseWgDump(await runOrThrow(run, `reading ${dev}'s peers`, ["wg", "show", dev, "dump"]));
  const plan = planPeers(dump.peers, roster, selfId);
  for (const key of plan.remove)
    await runOrThrow(run, `removing a peer from ${dev}`, ["wg", "set", dev, "peer", key, "remove"]);
  for (const peer of plan.set) {
    const argv = [
      "wg",
      "set",
      dev,
      "peer",
      peer.publicKey,
      "allowed-ips",
      peer.allowedIp,
      "persistent-keepalive",
      String(persistentKeepaliveS),
    ];
    if (peer.endpoint !== null) argv.push("endpoint", peer.endpoint);
    await runOrThrow(run, `adding peer ${peer.name} to ${dev}`, argv);
  }
  return plan;
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
