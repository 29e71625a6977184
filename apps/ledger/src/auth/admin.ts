import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyFromPem, publicKeyToBase64, SignedAudience, signRequest } from "@potluck/peer";
import { LedgerAdmin } from "@potluck/protocol";

/**
 * Admin grants (`adjust`, the only entries that change the sum of all balances) are accepted only
 * when signed by the household admin, and the admin's key is the hub's signing key: the key that
 * already signs every roster and enrollment answer and that every machine and the ledger pin.
 * A separate admin key would not protect more: whoever reads the hub's key file can already put
 * machines of any owner on the roster and spend from that owner. One key, one file to guard.
 *
 * The ledger learns the key's public half from POTLUCK_COORDINATOR_KEY, else (a ledger on the hub,
 * sharing its data dir) from the key file the coordinator created. Without either, no grant is
 * accepted and the 403 says how to configure one.
 */
export function hubSigningKeyPath(dataDir: string): string {
  // The path the coordinator writes (apps/coordinator/src/signing-key.ts), spelled out here so the
  // ledger does not depend on the coordinator's package for one file name.
  return join(dataDir, "coordinator", "signing-ed25519.pem");
}

/** The admin's public key (32 raw bytes, base64), or undefined when this ledger knows none. */
export function adminKeyFor(options: { coordinatorKey?: string; dataDir: string }): string | undefined {
  if (options.coordinatorKey !== undefined) return options.coordinatorKey;
  let pem: string;
  try {
    pem = readFileSync(hubSigningKeyPath(options.dataDir), "utf8");
  } catch {
    return undefined;
  }
  return publicKeyToBase64(createPublicKey(privateKeyFromPem(pem)));
}

/** What to do when a ledger knows no admin key: every grant is refused until one is configured. */
export const noAdminKey =
  "this ledger knows no admin key: set POTLUCK_COORDINATOR_KEY to the hub's public key, or run the ledger with the hub's data dir";

/** Why a grant was refused, for the 403: who it came from, and what would be accepted. */
export function grantRefusal(writer: string, adminKnown: boolean): string {
  const how = adminKnown ? "sign it with the hub's key: `potluck ledger grant` on the hub" : noAdminKey;
  return `grants (adjust) are accepted only when signed by the household admin (the hub's signing key), not by ${writer}; ${how}`;
}

/** The path grants are posted to: the ledger's one HTTP write path for events. */
export const grantPath = "/v1/events";

/**
 * The headers that sign one grant body (an `adjust` event as JSON) with the hub's key, for
 * `potluck ledger grant` and tests. Signed for the ledger's audience and path like any machine's
 * write, so it cannot be replayed at a peer or another route, and its nonce is single-use.
 */
export function signGrant(body: string, hubPrivateKey: KeyObject): Record<string, string> {
  return signRequest(
    { method: "POST", path: grantPath, body, target: SignedAudience.ledger },
    { machine: LedgerAdmin.signer, privateKey: hubPrivateKey },
  );
}

/** Reads the hub's private key for signing grants; the error names the file and who can read it. */
export function readHubPrivateKey(dataDir: string): KeyObject {
  const path = hubSigningKeyPath(dataDir);
  try {
    return privateKeyFromPem(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(
      `cannot read the hub's signing key ${path} (${(error as Error).message}): grants are signed on the hub, as the user that runs the coordinator (or root), with its data dir`,
      { cause: error },
    );
  }
}
