import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity, privateKeyFromPem, publicKeyToBase64 } from "@potluck/peer";

/**
 * The two keys a machine holds. The WireGuard key is the tunnel's (X25519, base64 as `wg genkey`
 * writes it); the identity key (Ed25519) signs peer requests and is the very file the sidecar
 * loads (DATA_DIR/identity-ed25519.pem), so the key the coordinator lists is the one it signs with.
 */
export interface MachineKeys {
  wireguardPrivateKeyPath: string;
  wireguardPublicKey: string;
  identityPath: string;
  identityPublicKey: string;
}

export const wireguardKeyFile = "wireguard-potluck0.key";
export const identityKeyFile = "identity-ed25519.pem";

/** Loads both keys from `dataDir`, creating any that are missing with 0600 permissions. */
export function ensureMachineKeys(dataDir: string): MachineKeys {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const wireguardPrivateKeyPath = join(dataDir, wireguardKeyFile);
  const identityPath = join(dataDir, identityKeyFile);
  if (!existsSync(wireguardPrivateKeyPath))
    writeFileSync(wireguardPrivateKeyPath, `${generateWireguardPrivateKey()}\n`, { mode: 0o600, flag: "wx" });
  if (!existsSync(identityPath))
    writeFileSync(identityPath, generateIdentity().privateKeyPem, { mode: 0o600, flag: "wx" });
  for (const path of [wireguardPrivateKeyPath, identityPath]) tightenMode(path);
  return {
    wireguardPrivateKeyPath,
    wireguardPublicKey: wireguardPublicKeyOf(readFileSync(wireguardPrivateKeyPath, "utf8").trim()),
    identityPath,
    identityPublicKey: publicKeyToBase64(createPublicKey(privateKeyFromPem(readFileSync(identityPath, "utf8")))),
  };
}

/** 32 random bytes as X25519 private key, base64 (what `wg genkey` prints; WireGuard clamps it). */
export function generateWireguardPrivateKey(): string {
  const { privateKey } = generateKeyPairSync("x25519");
  return privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32).toString("base64");
}

/** The public key `wg pubkey` would print for `privateKey` (base64 in, base64 out). */
export function wireguardPublicKeyOf(privateKey: string): string {
  const raw = Buffer.from(privateKey, "base64");
  if (raw.length !== 32) throw new Error("reading WireGuard private key: expected 32 bytes in base64");
  // PKCS#8 wrapper for a raw X25519 private key: a fixed 16-byte prefix, then the key.
  const der = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), raw]);
  const pub = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" }));
  return pub.export({ format: "der", type: "spki" }).subarray(-32).toString("base64");
}

/** A key file others can read is a leak waiting to happen: tighten it rather than use it as is. */
function tightenMode(path: string): void {
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}
