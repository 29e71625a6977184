import { createHash, timingSafeEqual } from "node:crypto";
import { errorBody, ErrorCode, Headers, LedgerAdmin, LedgerLimits } from "@potluck/protocol";
import { ReplayCache, SignedAudience, verifyRequest } from "@potluck/peer";
import type { MiddlewareHandler } from "hono";
import { noAdminKey } from "./admin.js";
import type { MachineDirectory } from "./roster.js";

/**
 * Who may write to the ledger over HTTP (append events, sign a checkpoint, take a snapshot):
 * - the operator or a test, with `Authorization: Bearer <POTLUCK_LEDGER_WRITE_TOKEN>`: anything;
 * - a machine on the coordinator's roster, with a request signed by its Ed25519 identity key (the
 *   same peer-request signature as between sidecars, libs/peer signing.ts): events for its
 *   own owner's account only;
 * - the household admin, with a request signed by the hub's key under the name `admin@hub`
 *   (auth/admin.ts): grants (`adjust`), which nobody else may post, the write token included.
 * Reads stay open: a member fetches proofs, and proofs are public.
 * With neither configured, every write is refused and the 401 says how to configure one.
 */
export interface WriteAuth {
  token?: string;
  machines?: MachineDirectory;
  replay?: ReplayCache;
  /** The household admin's public key (the hub's signing key, auth/admin.ts): who signs grants. */
  adminKey?: string;
}

/** The authenticated writer, for the handlers: `c.get("writer")`. */
export type Writer = { kind: "token" } | { kind: "admin" } | { kind: "machine"; machine: string; owner: string };
export type WriterVariables = { writer: Writer };

export function requireWriter(auth: WriteAuth | undefined): MiddlewareHandler<{ Variables: WriterVariables }> {
  const replay = auth?.replay ?? new ReplayCache();
  const tokenDigest = auth?.token === undefined ? undefined : digest(auth.token);
  return async (c, next) => {
    const authorization = c.req.header("authorization");
    if (authorization !== undefined) {
      const presented = /^Bearer (\S+)$/.exec(authorization)?.[1];
      if (tokenDigest === undefined || presented === undefined || !timingSafeEqual(digest(presented), tokenDigest)) {
        return c.json(
          errorBody(
            ErrorCode.unauthorized,
            "write refused: the bearer token is not this ledger's write token",
            "authorization",
          ),
          401,
        );
      }
      c.set("writer", { kind: "token" });
      return next();
    }
    const machines = auth?.machines;
    const adminKey = auth?.adminKey;
    if (c.req.header(Headers.machine) === LedgerAdmin.signer && adminKey === undefined)
      return c.json(errorBody(ErrorCode.forbidden, `grant refused: ${noAdminKey}`, Headers.machine), 403);
    if (machines === undefined && adminKey === undefined) {
      const how =
        tokenDigest === undefined
          ? "this ledger has no writers configured (set POTLUCK_LEDGER_WRITE_TOKEN, or POTLUCK_COORDINATOR_URL for signed machine requests)"
          : "send Authorization: Bearer <write token>";
      return c.json(errorBody(ErrorCode.unauthorized, `write refused: ${how}`, "authorization"), 401);
    }
    // Read bounded: the signature covers the exact bytes, so they are hashed before any parsing.
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > LedgerLimits.eventBodyBytesMax)
      return c.json(
        errorBody(ErrorCode.bodyTooLarge, `body: larger than ${LedgerLimits.eventBodyBytesMax} bytes`, "body"),
        413,
      );
    const body = await c.req.text();
    if (Buffer.byteLength(body) > LedgerLimits.eventBodyBytesMax)
      return c.json(
        errorBody(ErrorCode.bodyTooLarge, `body: larger than ${LedgerLimits.eventBodyBytesMax} bytes`, "body"),
        413,
      );
    let owner: string | undefined;
    let result;
    try {
      const url = new URL(c.req.url);
      result = await verifyRequest(
        { method: c.req.method, path: url.pathname + url.search, body, headers: (name) => c.req.header(name) },
        {
          target: SignedAudience.ledger,
          replay,
          lookupKey: async (machine) => {
            if (machine === LedgerAdmin.signer) return adminKey;
            const known = await machines?.lookup(machine);
            owner = known?.owner;
            return known?.identityPublicKey;
          },
        },
      );
    } catch (error) {
      return c.json(
        errorBody(
          ErrorCode.unavailable,
          `write refused: cannot check the request's signature right now: ${(error as Error).message}`,
        ),
        503,
      );
    }
    if (!result.ok) {
      const hint = result.failure === "unsigned" ? ` (or Authorization: Bearer <write token>)` : "";
      return c.json(
        errorBody(
          result.failure,
          `write refused (${result.failure}): ${result.message}${hint}`,
          result.failure === "unsigned" ? Headers.signature : undefined,
        ),
        401,
      );
    }
    c.set(
      "writer",
      result.machine === LedgerAdmin.signer
        ? { kind: "admin" }
        : { kind: "machine", machine: result.machine, owner: owner ?? "" },
    );
    return next();
  };
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
