import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { ReplayCache } from "./replay-cache.js";
import { checkSigned, SignedAudience, verifyRequest, type KeyLookup, type VerifyResult } from "./signing.js";

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

/** A message as received: its subject, its exact bytes and a reader of its NATS headers. */
export interface ReceivedMessage {
  subject: string;
  data: Uint8Array;
  header: (name: string) => string | undefined;
}

/** Signs one message for `subject`: the signing headers as NATS headers, ready to publish with it. */
export function signedMessageHeaders(
  subject: string,
  payload: string,
  sign: (parts: { method: string; path: string; body: string; target: string }) => Record<string, string>,
): MsgHdrs {
  const signed = headers();
  for (const [name, value] of Object.entries(sign(messageSigningParts(subject, payload)))) signed.set(name, value);
  return signed;
}

/** Checks a received message's signature; `header` reads its NATS headers ("" counts as absent). */
export function verifyMessage(
  message: ReceivedMessage,
  options: { lookupKey: KeyLookup; replay: ReplayCache; nowMs?: number },
): Promise<VerifyResult> {
  return verifyRequest(signedParts(message), { ...options, target: SignedAudience.messages });
}

/**
 * Checks a durable message's signature (a usage event on JetStream): the signer and the bytes, but
 * no clock window and no nonce memory, because JetStream may redeliver it hours after it was sent
 * (a ledger down for maintenance). The receiver dedupes by content instead: the ledger applies an
 * event id once, so a replayed message changes nothing.
 */
export function verifyDurableMessage(
  message: ReceivedMessage,
  options: { lookupKey: KeyLookup },
): Promise<VerifyResult> {
  return checkSigned(signedParts(message), { target: SignedAudience.messages, lookupKey: options.lookupKey });
}

/** A received message as the signed parts a request would have; "" in a NATS header counts as absent. */
function signedParts(message: ReceivedMessage) {
  return {
    method: signedMessageMethod,
    path: message.subject,
    body: message.data,
    headers: (name: string) => {
      const value = message.header(name);
      return value === undefined || value === "" ? undefined : value;
    },
  };
}
