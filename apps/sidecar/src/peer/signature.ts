import { errorBody, ErrorCode, SidecarLimits } from "@potluck/protocol";
import { ReplayCache, verifyRequest } from "@potluck/peer";
import type { MiddlewareHandler } from "hono";
import type { SignerRecord } from "./directory.js";

/**
 * The verified caller, available to peer handlers as `c.get("peer")`: its canonical name and its owner on the roster.
 */
export interface VerifiedPeer {
  machine: string;
  owner: string;
}
export type PeerVariables = { peer: VerifiedPeer };

/**
 * Every /peer/* call must be signed by a machine on the roster, for this machine (`self`, its
 * canonical name; see libs/peer signing.ts). A failure is a 401 whose code names the check
 * (unknown_key, bad_signature, stale_timestamp, replayed_nonce, unsigned). Idempotent per
 * request, so a sub-app may mount it again safely.
 */
export function peerSignature({
  self,
  lookupSigner,
  replay = new ReplayCache(),
}: {
  self: string;
  lookupSigner: (machine: string) => Promise<SignerRecord | undefined>;
  replay?: ReplayCache;
}): MiddlewareHandler<{ Variables: PeerVariables }> {
  return async (c, next) => {
    if (c.get("peer") !== undefined) return next();
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > SidecarLimits.bodyBytesMax) {
      return c.json(
        errorBody(ErrorCode.bodyTooLarge, `body: larger than ${SidecarLimits.bodyBytesMax} bytes`, "body"),
        413,
      );
    }
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.byteLength > SidecarLimits.bodyBytesMax) {
      return c.json(
        errorBody(ErrorCode.bodyTooLarge, `body: larger than ${SidecarLimits.bodyBytesMax} bytes`, "body"),
        413,
      );
    }
    const url = new URL(c.req.url);
    let signer: SignerRecord | undefined;
    const result = await verifyRequest(
      { method: c.req.method, path: url.pathname + url.search, body, headers: (name) => c.req.header(name) },
      {
        target: self,
        replay,
        lookupKey: async (machine) => {
          signer = await lookupSigner(machine);
          return signer?.identityPublicKey;
        },
      },
    );
    if (!result.ok)
      return c.json(errorBody(result.failure, `peer request refused (${result.failure}): ${result.message}`), 401);
    if (signer === undefined) throw new Error("peer signature: a verified request has no signer");
    c.set("peer", { machine: signer.machine, owner: signer.owner });
    return next();
  };
}
