import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { Headers } from "@potluck/protocol";
import { SigningLimits } from "./limits.js";
import type { ReplayCache } from "./replay-cache.js";

/**
 * Signed peer requests: the ONE module that signs and verifies calls between sidecars (inference,
 * probes, memory search, diagnostics all reuse it). A request carries the caller's machine name, a
 * timestamp, a nonce and an Ed25519 signature over a canonical string of method, path (with
 * query), SHA-256 of the body, timestamp, nonce, the caller's machine name as sent and the target
 * the caller meant. Binding the target means a receiver cannot replay a caller's request at
 * another machine; binding the name means the header cannot be swapped for an alias. Mesh-IP
 * reachability is never a credential.
 */

/** Which check a request failed; a 401 names it. */
export const VerifyFailure = {
  unsigned: "unsigned",
  unknownKey: "unknown_key",
  badSignature: "bad_signature",
  staleTimestamp: "stale_timestamp",
  replayedNonce: "replayed_nonce",
} as const;
export type VerifyFailure = (typeof VerifyFailure)[keyof typeof VerifyFailure];

export type VerifyResult = { ok: true; machine: string } | { ok: false; failure: VerifyFailure; message: string };

/** The parts of a request the signature covers. */
export interface SignedParts {
  method: string;
  /** Path with query string, exactly as sent on the request line. */
  path: string;
  body: Uint8Array | string;
  /**
   * Who the request is for: another machine's canonical roster name, or one of the service
   * audiences (`SignedAudience`). The receiver verifies it is this target.
   */
  target: string;
}

/**
 * Targets that are services rather than machines. A request signed for one of them is refused by
 * every machine, and a peer request is refused by them.
 */
export const SignedAudience = {
  ledger: "potluck-ledger",
  coordinator: "potluck-coordinator",
  /** Messages on NATS (heartbeats): the subject already names the scope. */
  messages: "potluck-nats",
} as const;

/**
 * The headers that sign one outgoing request (machine, timestamp, nonce, signature): a machine's
 * identity bound to `signRequest`. Called once per request sent, since a nonce is single-use.
 */
export type RequestSigner = (request: {
  method: string;
  path: string;
  body: string;
  target: string;
}) => Record<string, string> | Promise<Record<string, string>>;

/** Looks up a machine's Ed25519 public key (32 raw bytes, base64), e.g. from the roster. */
export type KeyLookup = (machine: string) => string | undefined | Promise<string | undefined>;

/**
 * The string both sides sign/verify. Versioned so a future change cannot be confused with this
 * one (v1 bound neither the signer's name nor the target). Names are roster labels and audiences
 * are fixed words, so neither holds the newline that separates the fields.
 */
export function canonicalString(parts: SignedParts & { timestamp: string; nonce: string; machine: string }): string {
  const bodyHash = createHash("sha256").update(parts.body).digest("hex");
  return [
    "potluck-peer-v2",
    parts.method.toUpperCase(),
    parts.path,
    bodyHash,
    parts.timestamp,
    parts.nonce,
    parts.machine,
    parts.target,
  ].join("\n");
}

/** The headers that sign a request from `machine` with its identity key. */
export function signRequest(
  parts: SignedParts,
  identity: { machine: string; privateKey: KeyObject },
  options: { nowMs?: number; nonce?: string } = {},
): Record<string, string> {
  const timestamp = String(options.nowMs ?? Date.now());
  const nonce = options.nonce ?? randomBytes(16).toString("base64url");
  const signature = sign(
    null,
    Buffer.from(canonicalString({ ...parts, timestamp, nonce, machine: identity.machine })),
    identity.privateKey,
  ).toString("base64");
  return {
    [Headers.machine]: identity.machine,
    [Headers.timestamp]: timestamp,
    [Headers.nonce]: nonce,
    [Headers.signature]: signature,
  };
}

/**
 * Checks a signed request meant for `target` (this receiver's canonical name or audience).
 * Order matters: the key and the clock are checked before the signature, and a nonce is
 * remembered only after the signature holds, so forged requests cannot fill the replay cache or
 * burn a genuine caller's nonce. `lookupKey` must answer only for a machine's canonical name
 * (never an alias such as its roster id), so `machine` in the result is that name.
 */
export async function verifyRequest(
  parts: Omit<SignedParts, "target"> & { headers: (name: string) => string | undefined },
  options: { target: string; lookupKey: KeyLookup; replay: ReplayCache; nowMs?: number },
): Promise<VerifyResult> {
  return checkSigned(parts, { ...options, window: { replay: options.replay, nowMs: options.nowMs ?? Date.now() } });
}

/**
 * The checks every signed message gets: headers present, the signer's key known, the signature
 * over the canonical string. `window` adds the clock window and the single-use nonce; without it
 * (a durable message, redelivered by JetStream hours later) the receiver must dedupe by content.
 */
export async function checkSigned(
  parts: Omit<SignedParts, "target"> & { headers: (name: string) => string | undefined },
  options: { target: string; lookupKey: KeyLookup; window?: { replay: ReplayCache; nowMs: number } },
): Promise<VerifyResult> {
  const machine = parts.headers(Headers.machine);
  const timestamp = parts.headers(Headers.timestamp);
  const nonce = parts.headers(Headers.nonce);
  const signature = parts.headers(Headers.signature);
  if (machine === undefined || timestamp === undefined || nonce === undefined || signature === undefined) {
    return fail(
      VerifyFailure.unsigned,
      `request is not signed: it needs the ${Headers.machine}, ${Headers.timestamp}, ${Headers.nonce} and ${Headers.signature} headers`,
    );
  }
  if (
    nonce.length === 0 ||
    nonce.length > SigningLimits.nonceCharsMax ||
    signature.length > SigningLimits.signatureCharsMax
  ) {
    return fail(VerifyFailure.badSignature, "nonce or signature header has an impossible length");
  }
  const keyText = await options.lookupKey(machine);
  const publicKey = keyText === undefined ? undefined : importedPublicKey(keyText);
  if (publicKey === undefined)
    return fail(
      VerifyFailure.unknownKey,
      `no identity key is known for machine ${JSON.stringify(machine.slice(0, 64))}`,
    );
  const sentMs = /^\d{1,16}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
  const { window } = options;
  if (
    !Number.isFinite(sentMs) ||
    (window !== undefined &&
      (Math.abs(window.nowMs - sentMs) > SigningLimits.clockSkewMsMax ||
        !window.replay.isFresh(machine, sentMs, window.nowMs)))
  ) {
    return fail(
      VerifyFailure.staleTimestamp,
      `timestamp ${timestamp.slice(0, 20)} is outside the ${SigningLimits.clockSkewMsMax / 1000} s window around this machine's clock`,
    );
  }
  const canonical = canonicalString({
    method: parts.method,
    path: parts.path,
    body: parts.body,
    timestamp,
    nonce,
    machine,
    target: options.target,
  });
  let valid = false;
  try {
    valid = verify(null, Buffer.from(canonical), publicKey, Buffer.from(signature, "base64"));
  } catch {
    valid = false;
  }
  if (!valid)
    return fail(
      VerifyFailure.badSignature,
      `signature does not match machine ${machine}'s identity key for this method, path, body, timestamp, nonce and target ${options.target}`,
    );
  if (window !== undefined && !window.replay.remember(machine, nonce, sentMs, window.nowMs))
    return fail(VerifyFailure.replayedNonce, `nonce was already used by ${machine}; each request needs a fresh nonce`);
  return { ok: true, machine };
}

export function generateIdentity(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: publicKeyToBase64(publicKey),
  };
}

export function privateKeyFromPem(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ed25519")
    throw new Error(`expected an Ed25519 private key, got ${key.asymmetricKeyType ?? "unknown"}`);
  return key;
}

/** The roster's form of a public key: 32 raw bytes in standard base64. */
export function publicKeyToBase64(key: KeyObject): string {
  const x = key.export({ format: "jwk" }).x;
  if (x === undefined) throw new Error("expected an Ed25519 key");
  return Buffer.from(x, "base64url").toString("base64");
}

/** Parses a roster public key; undefined when it is not 32 bytes of valid Ed25519 key. */
export function publicKeyFromBase64(text: string): KeyObject | undefined {
  const raw = Buffer.from(text, "base64");
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  } catch {
    return undefined;
  }
}

/**
 * Imported keys by their base64 text. A JWK import costs about a tenth to a fifth of an Ed25519
 * verify, and every signed peer request and heartbeat was paying it for nothing. Bounded: cleared
 * when full, since keys are cheap to import again (SigningLimits.importedKeysMax).
 */
const importedKeys = new Map<string, KeyObject>();
const importedKeysMax = SigningLimits.importedKeysMax;

function importedPublicKey(text: string): KeyObject | undefined {
  const cached = importedKeys.get(text);
  if (cached !== undefined) return cached;
  const key = publicKeyFromBase64(text);
  if (key === undefined) return undefined;
  if (importedKeys.size >= importedKeysMax) importedKeys.clear();
  importedKeys.set(text, key);
  return key;
}

function fail(failure: VerifyFailure, message: string): VerifyResult {
  return { ok: false, failure, message };
}
