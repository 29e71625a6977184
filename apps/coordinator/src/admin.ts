import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CoordinatorAdminHeader, CoordinatorErrorCode, PotluckHttpError } from "@potluck/protocol";

/**
 * Admin endpoints (token creation, machine removal, key rotation) need the admin secret. It is
 * created on first start in the data directory with 0600 permissions, so whoever can read the
 * coordinator's data dir (its owner, root) can administer it — `potluck token create` on the
 * same machine reads it from there; elsewhere pass it with --admin-secret. Loopback is NOT
 * trusted by itself: on a shared or proxied host it proves nothing.
 */
export function adminSecretPath(dataDir: string): string {
  return join(dataDir, "coordinator", "admin-secret");
}

export function loadOrCreateAdminSecret(dataDir: string): string {
  const path = adminSecretPath(dataDir);
  try {
    return readSecret(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      throw new Error(`reading admin secret ${path}: ${(error as Error).message}`, { cause: error });
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // 'wx': if another process created it a moment ago, keep theirs.
    writeFileSync(path, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST")
      throw new Error(`creating admin secret ${path}: ${(error as Error).message}`, { cause: error });
  }
  return readSecret(path);
}

function readSecret(path: string): string {
  const secret = readFileSync(path, "utf8").trim();
  if (secret.length < 16) throw new Error(`admin secret ${path} is shorter than 16 characters`);
  return secret;
}

/** Throws 401 unless the request carries the admin secret (header or bearer token). */
export function requireAdmin(expected: string, headers: { get(name: string): string | null | undefined }): void {
  const bearer = headers.get("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1];
  const given = headers.get(CoordinatorAdminHeader) ?? bearer;
  if (given === undefined || given === null || !sameSecret(given.trim(), expected)) {
    throw new PotluckHttpError(
      401,
      CoordinatorErrorCode.adminRequired,
      `this endpoint needs the coordinator's admin secret (header ${CoordinatorAdminHeader}); it is in the coordinator's data dir under coordinator/admin-secret`,
    );
  }
}

function sameSecret(a: string, b: string): boolean {
  // Hash both so the comparison is constant-time whatever the lengths.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
