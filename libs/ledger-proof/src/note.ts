import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";

/**
 * C2SP signed notes (https://c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank
 * line, then one line per signature: "— NAME BASE64(keyhash[4] ‖ signature)". Ed25519 keys
 * (algorithm byte 0x01) and witness cosignatures (0x04, https://c2sp.org/tlog-cosignature).
 */
export const NoteAlg = { ed25519: 0x01, cosignatureV1: 0x04 } as const;
export type NoteAlg = (typeof NoteAlg)[keyof typeof NoteAlg];

/** A parsed verifier key "NAME+HASH+BASE64(alg ‖ pubkey)". */
export interface NoteVerifier {
  name: string;
  keyHash: Buffer;
  alg: NoteAlg;
  publicKey: KeyObject;
  /** The raw 32-byte public key. */
  raw: Buffer;
}

/** A signer: the private key and the verifier string others use to check it. */
export interface NoteSigner {
  name: string;
  alg: NoteAlg;
  keyHash: Buffer;
  privateKey: KeyObject;
  /** "PRIVATE+KEY+NAME+HASH+BASE64(alg ‖ seed)" */
  skey: string;
  vkey: string;
}

export class NoteError extends Error {
  override name = "NoteError";
}

export interface NoteSignature {
  name: string;
  keyHash: Buffer;
  signature: Buffer;
}

/** Makes a fresh Ed25519 signer for `name` (a note key name: no spaces, no '+'). */
export function generateSigner(name: string, alg: NoteAlg = NoteAlg.ed25519): NoteSigner {
  const { privateKey } = generateKeyPairSync("ed25519");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d ?? "", "base64url");
  return signerFromSeed(name, seed, alg);
}

export function signerFromSeed(name: string, seed: Buffer, alg: NoteAlg = NoteAlg.ed25519): NoteSigner {
  assertKeyName(name);
  if (seed.length !== 32) throw new NoteError(`an Ed25519 seed has 32 bytes, not ${seed.length}`);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const raw = Buffer.from(createPublicKey(privateKey).export({ format: "jwk" }).x ?? "", "base64url");
  const keyHash = noteKeyHash(name, alg, raw);
  const hex = keyHash.toString("hex");
  return {
    name,
    alg,
    keyHash,
    privateKey,
    skey: `PRIVATE+KEY+${name}+${hex}+${Buffer.concat([Buffer.from([alg]), seed]).toString("base64")}`,
    vkey: `${name}+${hex}+${Buffer.concat([Buffer.from([alg]), raw]).toString("base64")}`,
  };
}

/** Parses "PRIVATE+KEY+NAME+HASH+KEY" back into a signer, checking the hash matches. */
export function parseSignerKey(skey: string): NoteSigner {
  const parts = splitKey(skey, 5);
  if (parts.length !== 5 || parts[0] !== "PRIVATE" || parts[1] !== "KEY")
    throw new NoteError("signer key is not PRIVATE+KEY+NAME+HASH+KEY");
  const data = Buffer.from(parts[4] ?? "", "base64");
  const alg = data[0];
  if (alg !== NoteAlg.ed25519 && alg !== NoteAlg.cosignatureV1)
    throw new NoteError(`signer key algorithm ${alg} is not supported`);
  const signer = signerFromSeed(parts[2] ?? "", data.subarray(1), alg);
  if (signer.keyHash.toString("hex") !== parts[3]) throw new NoteError("signer key hash does not match the key");
  return signer;
}

/** Parses a verifier key "NAME+HASH+BASE64(alg ‖ pubkey)", checking the hash matches. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const parts = splitKey(vkey, 3);
  if (parts.length !== 3) throw new NoteError("verifier key is not NAME+HASH+KEY");
  const [name = "", hex = "", b64 = ""] = parts;
  assertKeyName(name);
  const data = Buffer.from(b64, "base64");
  const alg = data[0];
  if (alg !== NoteAlg.ed25519 && alg !== NoteAlg.cosignatureV1)
    throw new NoteError(`verifier key algorithm ${alg} is not supported`);
  const raw = data.subarray(1);
  if (raw.length !== 32) throw new NoteError(`an Ed25519 public key has 32 bytes, not ${raw.length}`);
  const keyHash = noteKeyHash(name, alg, raw);
  if (!/^[0-9a-f]{8}$/.test(hex) || keyHash.toString("hex") !== hex)
    throw new NoteError("verifier key hash does not match the key");
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
  return { name, keyHash, alg, publicKey, raw };
}

/** The 4-byte key hash: SHA-256(name ‖ "\n" ‖ alg ‖ pubkey)[:4]. */
export function noteKeyHash(name: string, alg: NoteAlg, raw: Buffer): Buffer {
  return createHash("sha256")
    .update(name)
    .update("\n")
    .update(Buffer.from([alg]))
    .update(raw)
    .digest()
    .subarray(0, 4);
}

/** Signs `text` (which must end in a newline) and returns the whole note. */
export function signNote(text: string, signer: NoteSigner): string {
  assertText(text);
  const signature = sign(null, Buffer.from(text, "utf8"), signer.privateKey);
  return `${text}\n${signatureLine(signer.name, signer.keyHash, signature)}`;
}

/** Adds one more signature line to an already signed note. */
export function appendSignature(note: string, line: string): string {
  return note.endsWith("\n") ? `${note}${line}` : `${note}\n${line}`;
}

export function signatureLine(name: string, keyHash: Buffer, signature: Buffer): string {
  return `\u2014 ${name} ${Buffer.concat([keyHash, signature]).toString("base64")}\n`;
}

/** Splits a note into its text and its signature lines, refusing anything malformed. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } {
  if (note.length > NOTE_CHARS_MAX) throw new NoteError(`note is longer than ${NOTE_CHARS_MAX} characters`);
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  assertText(text);
  const lines = note.slice(split + 2).split("\n");
  if (lines.pop() !== "") throw new NoteError("note does not end in a newline");
  if (lines.length === 0) throw new NoteError("note has no signatures");
  const signatures = lines.map(parseSignatureLine);
  return { text, signatures };
}

/**
 * Verifies a note against known keys: at least one signature must be by `verifier` and valid.
 * Unknown signers are ignored, as the spec says; a known signer with a bad signature is an error.
 */
export function openNote(note: string, verifier: NoteVerifier): { text: string; signatures: NoteSignature[] } {
  const parsed = parseNote(note);
  const mine = parsed.signatures.filter((s) => s.name === verifier.name && s.keyHash.equals(verifier.keyHash));
  if (mine.length === 0) throw new NoteError(`note is not signed by ${verifier.name}`);
  for (const s of mine) {
    if (!verify(null, Buffer.from(parsed.text, "utf8"), verifier.publicKey, s.signature))
      throw new NoteError(`signature by ${verifier.name} does not verify`);
  }
  return parsed;
}

/** Notes are small; a bound keeps a hostile file from costing more than a glance. */
export const NOTE_CHARS_MAX = 64 * 1024;

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function parseSignatureLine(line: string): NoteSignature {
  const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
  if (m === null) throw new NoteError(`malformed signature line ${JSON.stringify(line.slice(0, 80))}`);
  const data = Buffer.from(m[2] ?? "", "base64");
  if (data.length < 5) throw new NoteError("signature is too short");
  return { name: m[1] ?? "", keyHash: data.subarray(0, 4), signature: data.subarray(4) };
}

/** Splits on '+' into at most `count` parts: the base64 key at the end may itself contain '+'. */
function splitKey(key: string, count: number): string[] {
  const parts = key.trim().split("+");
  return parts.length < count ? parts : [...parts.slice(0, count - 1), parts.slice(count - 1).join("+")];
}

function assertKeyName(name: string): void {
  if (!/^[^\s+]{1,128}$/.test(name))
    throw new NoteError(`key name ${JSON.stringify(name)} must be 1-128 characters without spaces or '+'`);
}

function assertText(text: string): void {
  if (!text.endsWith("\n")) throw new NoteError("note text must end in a newline");
  if (text.includes("\n\n")) throw new NoteError("note text must not contain a blank line");
}
