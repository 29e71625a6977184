import { sign, verify } from "node:crypto";
import { HASH_BYTES } from "./merkle.js";
import {
  NoteAlg,
  NoteError,
  openNote,
  parseNote,
  signatureLine,
  signNote,
  type NoteSigner,
  type NoteVerifier,
} from "./note.js";

/** A C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint): origin, size, root. */
export interface CheckpointBody {
  origin: string;
  size: number;
  root: Buffer;
}

export function formatCheckpoint(body: CheckpointBody): string {
  if (body.origin.length === 0 || /\s$|\n/.test(body.origin))
    throw new NoteError("checkpoint origin must be one non-empty line");
  if (body.root.length !== HASH_BYTES) throw new NoteError(`checkpoint root has ${body.root.length} bytes`);
  return `${body.origin}\n${body.size}\n${body.root.toString("base64")}\n`;
}

/** Parses a checkpoint's note text; extension lines after the root are allowed and ignored. */
export function parseCheckpointText(text: string): CheckpointBody {
  const lines = text.split("\n");
  const [origin = "", sizeLine = "", rootLine = ""] = lines;
  if (lines.length < 4 || origin.length === 0) throw new NoteError("checkpoint needs origin, size and root lines");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeLine))
    throw new NoteError(`checkpoint size ${JSON.stringify(sizeLine)} is not a decimal number`);
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new NoteError("checkpoint size is too large");
  const root = Buffer.from(rootLine, "base64");
  if (root.length !== HASH_BYTES || root.toString("base64") !== rootLine)
    throw new NoteError("checkpoint root is not 32 bytes of base64");
  return { origin, size, root };
}

export function signCheckpoint(body: CheckpointBody, signer: NoteSigner): string {
  return signNote(formatCheckpoint(body), signer);
}

/** Verifies the log's signature on a checkpoint and, if given, that it is for the expected origin. */
export function openCheckpoint(note: string, verifier: NoteVerifier, origin?: string): CheckpointBody {
  const body = parseCheckpointText(openNote(note, verifier).text);
  if (origin !== undefined && body.origin !== origin)
    throw new NoteError(`checkpoint origin ${JSON.stringify(body.origin)} is not ${JSON.stringify(origin)}`);
  return body;
}

/**
 * A witness cosignature (https://c2sp.org/tlog-cosignature, cosignature/v1): the witness signs
 * "cosignature/v1\ntime T\n" followed by the checkpoint text; the line carries T and the signature.
 */
export function cosignLine(checkpointText: string, witness: NoteSigner, timeS: number): string {
  if (witness.alg !== NoteAlg.cosignatureV1) throw new NoteError("a witness key must use the cosignature/v1 algorithm");
  const signature = sign(null, cosignedMessage(checkpointText, timeS), witness.privateKey);
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(timeS));
  return signatureLine(witness.name, witness.keyHash, Buffer.concat([time, signature]));
}

/** Checks a witness's cosignature on a checkpoint note; returns the time it was cosigned. */
export function verifyCosignature(note: string, witness: NoteVerifier): number {
  const { text, signatures } = parseNote(note);
  const mine = signatures.find((s) => s.name === witness.name && s.keyHash.equals(witness.keyHash));
  if (mine === undefined) throw new NoteError(`checkpoint is not cosigned by ${witness.name}`);
  if (mine.signature.length !== 72) throw new NoteError("cosignature has the wrong length");
  const timeS = Number(mine.signature.readBigUInt64BE(0));
  if (!verify(null, cosignedMessage(text, timeS), witness.publicKey, mine.signature.subarray(8)))
    throw new NoteError(`cosignature by ${witness.name} does not verify`);
  return timeS;
}

function cosignedMessage(checkpointText: string, timeS: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timeS}\n${checkpointText}`, "utf8");
}
