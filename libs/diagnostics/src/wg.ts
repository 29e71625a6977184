import { execFile } from "node:child_process";
import type { TunnelPeer, TunnelReader } from "./probes.js";

/** `wg show` output is a few hundred bytes a peer; this bounds a wedged or huge answer. */
const wgOutputBytesMax = 1024 * 1024;

/**
 * Reads the mesh interface with `wg show IFACE dump`: one tab-separated line for the interface,
 * then one per peer (public key, preshared key, endpoint, allowed IPs, latest handshake in Unix
 * seconds, rx bytes, tx bytes, keepalive).
 */
export function wgTunnelReader({
  wgPath = "wg",
  env,
}: { wgPath?: string; env?: NodeJS.ProcessEnv } = {}): TunnelReader {
  return {
    peers(interfaceName, signal) {
      return new Promise((resolve, reject) => {
        execFile(
          wgPath,
          ["show", interfaceName, "dump"],
          { signal, maxBuffer: wgOutputBytesMax, encoding: "utf8", env: env ?? process.env },
          (error, stdout, stderr) => {
            if (error) {
              reject(
                new Error(`reading ${interfaceName} with wg show: ${stderr.trim() || error.message}`, { cause: error }),
              );
              return;
            }
            resolve(parseWgDump(stdout));
          },
        );
      });
    },
  };
}

/** Parses `wg show IFACE dump`; the first line describes the interface itself and is skipped. */
export function parseWgDump(text: string): TunnelPeer[] {
  const lines = text.split("\n").filter((line) => line.trim().length > 0);
  const peers: TunnelPeer[] = [];
  for (const line of lines.slice(1)) {
    const fields = line.split("\t");
    if (fields.length < 8)
      throw new Error(`parsing wg show dump: expected 8 fields per peer, got ${fields.length}: ${line}`);
    const [publicKey = "", , endpoint = "", allowedIps = "", handshake = "0", rx = "0", tx = "0"] = fields;
    const handshakeS = Number(handshake);
    peers.push({
      publicKey,
      endpoint: endpoint === "(none)" || endpoint === "" ? null : endpoint,
      allowedIps: allowedIps === "(none)" ? [] : allowedIps.split(","),
      latestHandshakeAtMs: Number.isFinite(handshakeS) && handshakeS > 0 ? handshakeS * 1000 : null,
      rxBytes: Number(rx) || 0,
      txBytes: Number(tx) || 0,
    });
  }
  return peers;
}
