import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import { createPublicKey } from "node:crypto";
import { generateIdentity, privateKeyFromPem, publicKeyToBase64, signRequest } from "@potluck/peer";

/** This machine's Ed25519 identity: signs every outgoing peer request. */
export interface Identity {
  machine: string;
  publicKey: string;
  /** Headers that sign one request for `target` (fresh timestamp and nonce each call). */
  sign(request: { method: string; path: string; body: string; target: string }): Record<string, string>;
}

export const IDENTITY_FILE = "identity-ed25519.pem";

/**
 * Loads DATA_DIR/identity-ed25519.pem, creating it (mode 0600, directory 0700) on first start. A
 * key file others can read is tightened, and said so, rather than silently used.
 */
export function loadOrCreateIdentity(
  dataDir: string,
  machine: string,
  log: (message: string) => void = () => undefined,
): Identity {
  const path = join(dataDir, IDENTITY_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (!existsSync(path)) {
    writeFileSync(path, generateIdentity().privateKeyPem, { mode: 0o600, flag: "wx" });
    log(`created identity key ${path}`);
  } else if ((statSync(path).mode & 0o077) !== 0) {
    chmodSync(path, 0o600);
    log(`identity key ${path} was readable by others; set it to 0600`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyFromPem(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`reading identity key ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return identityFrom(machine, privateKey);
}

export function identityFrom(machine: string, privateKey: KeyObject): Identity {
  return {
    machine,
    publicKey: publicKeyToBase64(createPublicKey(privateKey)),
    sign: (request) => signRequest(request, { machine, privateKey }),
  };
}
