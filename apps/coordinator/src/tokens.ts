import { createHash, randomBytes } from "node:crypto";

/** 24 random bytes: 192 bits, far past guessing even with no rate limit. */
const tokenBytes = 24;

/** A fresh join token. The prefix makes a leaked one recognisable in logs and secret scanners. */
export function generateToken(): string {
  return `plj_${randomBytes(tokenBytes).toString("base64url")}`;
}

/** Tokens are stored only as this hash, so a database dump enrolls nobody. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}
