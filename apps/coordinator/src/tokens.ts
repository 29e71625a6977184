import { createHash, randomBytes } from "node:crypto";
import { tokenFingerprintSeparator } from "@potluck/peer";

/** 24 random bytes: 192 bits, far past guessing even with no rate limit. */
const tokenBytes = 24;

/**
 * A fresh join token: the secret, then the fingerprint of the hub's signing key, so the joining
 * machine knows which key must sign the answers it gets (libs/peer signing-coordinator.ts). The
 * prefix makes a leaked one recognisable in logs and secret scanners.
 */
export function generateToken(keyFingerprint: string): string {
  return `plj_${randomBytes(tokenBytes).toString("base64url")}${tokenFingerprintSeparator}${keyFingerprint}`;
}

/** Tokens are stored only as this hash, so a database dump enrolls nobody. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}
