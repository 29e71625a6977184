import type { ReplayCache } from "./replay-cache.js";
import { SignedAudience, verifyRequest, type KeyLookup, type VerifyResult } from "./signing.js";

/**
 * NATS messages a machine vouches for (its heartbeats) are signed exactly like peer requests, by
 * the same module: the method is "PUB", the subject stands for the path, the payload is the
 * body, and the four signing headers ride as NATS message headers. Holding the hub's NATS secret
 * lets a machine publish; only its identity key lets it speak for itself.
 */
export const signedMessageMethod = "PUB";

/** What `Identity.sign` (or `signRequest`) signs for a message on `subject`. */
export function messageSigningParts(
  subject: string,
  payload: string,
): { method: string; path: string; body: string; target: string } {
  return { method: signedMessageMethod, path: subject, body: payload, target: SignedAudience.messages };
}

/** Checks a received message's signature; `header` reads its NATS headers ("" counts as absent). */
export function verifyMessage(
  message: { subject: string; data: Uint8Array; header: (name: string) => string | undefined },
  options: { lookupKey: KeyLookup; replay: ReplayCache; nowMs?: number },
): Promise<VerifyResult> {
  return verifyRequest(
    {
      method: signedMessageMethod,
      path: message.subject,
      body: message.data,
      headers: (name) => {
        const value = message.header(name);
        return value === undefined || value === "" ? undefined : value;
      },
    },
    { ...options, target: SignedAudience.messages },
  );
}
