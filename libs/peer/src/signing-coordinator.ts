import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { CoordinatorAnswerHeaders } from "@potluck/protocol";
import { publicKeyFromBase64 } from "./signing.js";

/**
 * Answers signed by the coordinator (roster, roster version, machines, enrollment), so whoever
 * sits between a machine and its hub on the LAN cannot inject identity or WireGuard keys. The
 * hub's Ed25519 public key rides on every answer; the join token carries its fingerprint, so the
 * joining machine pins the key it was told to expect (as Tailscale pins its control key) and
 * every later answer must verify against that pin. The signature covers the request path and
 * the exact body bytes: an answer cannot be moved to another path or edited.
 */

/** The separator between a join token's secret and the fingerprint of the hub's key. */
export const tokenFingerprintSeparator = ".";

/** SHA-256 of the 32 raw key bytes, base64url: what a join token carries after its secret. */
export function coordinatorKeyFingerprint(publicKey: string): string {
  return createHash("sha256").update(Buffer.from(publicKey, "base64")).digest("base64url");
}

/** The fingerprint a join token pins, or undefined for a token that carries none. */
export function fingerprintOfToken(token: string): string | undefined {
  const at = token.lastIndexOf(tokenFingerprintSeparator);
  if (at < 0) return undefined;
  const fingerprint = token.slice(at + 1);
  return /^[A-Za-z0-9_-]{43}$/.test(fingerprint) ? fingerprint : undefined;
}

/** The headers that sign one answer body for `path`. */
export function signCoordinatorAnswer(
  path: string,
  body: string | Uint8Array,
  key: { privateKey: KeyObject; publicKey: string },
): Record<string, string> {
  const signature = sign(null, answerString(path, body), key.privateKey).toString("base64");
  return { [CoordinatorAnswerHeaders.key]: key.publicKey, [CoordinatorAnswerHeaders.signature]: signature };
}

export type AnswerCheck = { ok: true; publicKey: string } | { ok: false; message: string };

/**
 * Checks an answer against the pinned key, or (`pin: { fingerprint }`) against the key the
 * answer carries when that key has the fingerprint a join token gave. An answer with no
 * signature, another key or a signature that does not match is refused.
 */
export function verifyCoordinatorAnswer(
  answer: { path: string; body: string | Uint8Array; header: (name: string) => string | null | undefined },
  pin: { publicKey: string } | { fingerprint: string },
): AnswerCheck {
  const carried = answer.header(CoordinatorAnswerHeaders.key) ?? undefined;
  const signature = answer.header(CoordinatorAnswerHeaders.signature) ?? undefined;
  if (carried === undefined || signature === undefined)
    return {
      ok: false,
      message: `the answer for ${answer.path} is not signed by the coordinator (no ${CoordinatorAnswerHeaders.signature} header)`,
    };
  const expected = "publicKey" in pin ? pin.publicKey : undefined;
  if (expected !== undefined && carried !== expected)
    return {
      ok: false,
      message: `the answer for ${answer.path} is signed with another key than the coordinator's pinned one`,
    };
  if ("fingerprint" in pin && coordinatorKeyFingerprint(carried) !== pin.fingerprint) {
    return {
      ok: false,
      message: `the answer for ${answer.path} is signed with a key whose fingerprint is not the join token's`,
    };
  }
  const key = publicKeyFromBase64(carried);
  let valid = false;
  try {
    valid =
      key !== undefined && verify(null, answerString(answer.path, answer.body), key, Buffer.from(signature, "base64"));
  } catch {
    valid = false;
  }
  return valid
    ? { ok: true, publicKey: carried }
    : {
        ok: false,
        message: `the coordinator's signature does not match the answer for ${answer.path}: it was changed on the way`,
      };
}

function answerString(path: string, body: string | Uint8Array): Buffer {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  return Buffer.from(["potluck-coordinator-v1", path, bodyHash].join("\n"));
}
