import { generateKeyPairSync } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execInHost, spawnInHost, wgDirOf, type HostRuntime } from "./host.js";
import { keepaliveS, meshDev, meshMtu } from "./names.js";
import { pollUntil } from "./run.js";
import type { LabProcess } from "./types.js";

/** wireguard-go creates its UAPI socket within a second; allow for a loaded machine. */
const wgSocketTimeoutMs = 30_000;

export interface WgKeys {
  privateKey: string;
  publicKey: string;
}

/** A Curve25519 key pair in WireGuard's base64 form, without forking `wg genkey` per host. */
export function generateWgKeys(): WgKeys {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  // DER PKCS#8 / SPKI for X25519 end with the 32 raw key bytes.
  const priv = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return { privateKey: priv.toString("base64"), publicKey: pub.toString("base64") };
}

export interface WgPeer {
  publicKey: string;
  meshIp: string;
  endpoint: string;
}

export function wgConfig(keys: WgKeys, listenPort: number, peers: readonly WgPeer[]): string {
  const lines = ["[Interface]", `PrivateKey = ${keys.privateKey}`, `ListenPort = ${listenPort}`];
  for (const peer of peers) {
    lines.push(
      "",
      "[Peer]",
      `PublicKey = ${peer.publicKey}`,
      `AllowedIPs = ${peer.meshIp}/32`,
      `Endpoint = ${peer.endpoint}`,
      `PersistentKeepalive = ${keepaliveS}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Starts wireguard-go in the foreground on the host (so the lab owns the process) and brings
 * potluck0 up with its address, MTU 1280 and every peer. Returns the wireguard-go process.
 */
export async function startMesh(
  rt: HostRuntime,
  keys: WgKeys,
  meshIp: string,
  listenPort: number,
  peers: readonly WgPeer[],
): Promise<LabProcess> {
  const proc = spawnInHost(rt, "wireguard-go", ["wireguard-go", "-f", meshDev], {
    // Foreground mode also silences the "kernel has WireGuard" banner check path.
    env: { ...process.env, WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" },
  });
  const socket = join(wgDirOf(rt.runDir), `${meshDev}.sock`);
  let exitedEarly = false;
  void proc.exited.then(() => (exitedEarly = true));
  const ready = await pollUntil(() => exitedEarly || existsSync(socket), {
    timeoutMs: wgSocketTimeoutMs,
    intervalMs: 50,
  });
  if (!ready || exitedEarly) {
    await proc.stop();
    throw new Error(
      `starting wireguard-go in ${rt.netns}: ${exitedEarly ? "it exited" : "no UAPI socket"}: ${proc.output().trim()}`,
    );
  }
  const confPath = join(rt.runDir, `${meshDev}.conf`);
  writeFileSync(confPath, wgConfig(keys, listenPort, peers), { mode: 0o600 });
  const script = [
    `wg setconf ${meshDev} "$1"`,
    `ip address add ${meshIp}/10 dev ${meshDev}`,
    `ip link set ${meshDev} mtu ${meshMtu} up`,
  ].join(" && ");
  const result = await execInHost(rt, ["sh", "-c", script, "sh", confPath]);
  if (result.code !== 0) {
    await proc.stop();
    throw new Error(`configuring ${meshDev} in ${rt.netns}: ${result.stderr.trim()}`);
  }
  return proc;
}

/** Epoch seconds of the latest handshake per peer public key (0 = never), or null if potluck0 is unreachable. */
export async function latestHandshakes(rt: HostRuntime): Promise<Map<string, number> | null> {
  const result = await execInHost(rt, ["wg", "show", meshDev, "latest-handshakes"], { timeoutMs: 30_000 });
  if (result.code !== 0) return null;
  const map = new Map<string, number>();
  for (const line of result.stdout.split("\n")) {
    const [key, epoch] = line.trim().split(/\s+/);
    if (key !== undefined && key !== "" && epoch !== undefined) map.set(key, Number(epoch));
  }
  return map;
}

/**
 * Removes and re-adds every peer from the host's own config file: its sessions are forgotten,
 * `latest-handshakes` reads 0, and keepalive makes it initiate a brand-new handshake at once.
 */
export async function rehandshake(rt: HostRuntime, peers: readonly WgPeer[]): Promise<void> {
  const confPath = join(rt.runDir, `${meshDev}.conf`);
  const remove = peers.map((p) => `wg set ${meshDev} peer ${p.publicKey} remove`).join(" && ");
  const result = await execInHost(rt, ["sh", "-c", `${remove} && wg addconf ${meshDev} "$1"`, "sh", confPath]);
  if (result.code !== 0) throw new Error(`rehandshake in ${rt.netns}: ${result.stderr.trim()}`);
}
