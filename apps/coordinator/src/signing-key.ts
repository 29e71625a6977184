import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createPublicKey, type KeyObject } from "node:crypto";
import { dirname, join } from "node:path";
import { generateIdentity, privateKeyFromPem, publicKeyToBase64 } from "@potluck/peer";

/** The hub's Ed25519 key: signs every roster and enrollment answer; join tokens carry its fingerprint. */
export interface CoordinatorKey {
  privateKey: KeyObject;
  /** 32 raw bytes, base64 (the roster's form of a key). */
  publicKey: string;
}

export function signingKeyPath(dataDir: string): string {
  return join(dataDir, "coordinator", "signing-ed25519.pem");
}

/**
 * Reads DATA_DIR/coordinator/signing-ed25519.pem, creating it (0600) on first start. Coordinators
 * sharing one database must share this file too: machines pin one key.
 */
export function loadOrCreateCoordinatorKey(dataDir: string): CoordinatorKey {
  const path = signingKeyPath(dataDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // 'wx': if another process created it a moment ago, keep theirs.
    writeFileSync(path, generateIdentity().privateKeyPem, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST")
      throw new Error(`creating coordinator signing key ${path}: ${(error as Error).message}`, { cause: error });
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyFromPem(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`reading coordinator signing key ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { privateKey, publicKey: publicKeyToBase64(createPublicKey(privateKey)) };
}
