import { describe, expect, it } from "vitest";
import {
  cosignLine,
  openCheckpoint,
  parseCheckpointText,
  signCheckpoint,
  verifyCosignature,
} from "../src/checkpoint.js";
import {
  appendSignature,
  generateSigner,
  NoteAlg,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from "../src/note.js";

// The worked example from the Go signed-note documentation (golang.org/x/mod/sumdb/note).
const goExample = {
  skey: "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
  vkey: "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
  text: "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
  note:
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n" +
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
};

describe("signed notes", () => {
  it("reproduces the Go documentation's signed note byte for byte", () => {
    const signer = parseSignerKey(goExample.skey);
    expect(signer.vkey).toBe(goExample.vkey);
    expect(signNote(goExample.text, signer)).toBe(goExample.note);
    expect(openNote(goExample.note, parseVerifierKey(goExample.vkey)).text).toBe(goExample.text);
  });

  it("refuses an altered text, a wrong key, a bad key hash and a note without signatures", () => {
    const vkey = parseVerifierKey(goExample.vkey);
    expect(() => openNote(goExample.note.replace("cryptography", "cryptograph"), vkey)).toThrow(/does not verify/);
    expect(() => openNote(goExample.note, parseVerifierKey(generateSigner("PeterNeumann").vkey))).toThrow(
      /not signed by/,
    );
    expect(() => parseVerifierKey(goExample.vkey.replace("c74f20a3", "c74f20a4"))).toThrow(/hash/);
    expect(() => openNote(goExample.text, vkey)).toThrow(/blank line/);
  });
});

describe("checkpoints", () => {
  const log = generateSigner("potluck.test/log");
  const root = Buffer.alloc(32, 7);

  it("signs and opens a tlog-checkpoint, and rejects another origin", () => {
    const note = signCheckpoint({ origin: "potluck.test/log", size: 42, root }, log);
    expect(note.split("\n").slice(0, 3)).toEqual(["potluck.test/log", "42", root.toString("base64")]);
    const body = openCheckpoint(note, parseVerifierKey(log.vkey), "potluck.test/log");
    expect(body.size).toBe(42);
    expect(body.root.equals(root)).toBe(true);
    expect(() => openCheckpoint(note, parseVerifierKey(log.vkey), "other")).toThrow(/origin/);
    expect(() => openCheckpoint(note.replace("\n42\n", "\n43\n"), parseVerifierKey(log.vkey))).toThrow(
      /does not verify/,
    );
  });

  it("refuses malformed bodies", () => {
    expect(() => parseCheckpointText("o\n-1\nAAAA\n")).toThrow(/size/);
    expect(() => parseCheckpointText(`o\n1\n${Buffer.alloc(31).toString("base64")}\n`)).toThrow(/root/);
    expect(() => parseCheckpointText("o\n1\n")).toThrow();
  });

  it("carries a witness cosignature alongside the log's signature", () => {
    const witness = generateSigner("witness.test", NoteAlg.cosignatureV1);
    const note = signCheckpoint({ origin: "potluck.test/log", size: 3, root }, log);
    const text = note.slice(0, note.indexOf("\n\n") + 1);
    const cosigned = appendSignature(note, cosignLine(text, witness, 1_700_000_000));
    expect(verifyCosignature(cosigned, parseVerifierKey(witness.vkey))).toBe(1_700_000_000);
    openCheckpoint(cosigned, parseVerifierKey(log.vkey));
    const other = signCheckpoint({ origin: "potluck.test/log", size: 4, root }, log);
    const moved =
      other.slice(0, other.length) +
      cosigned
        .split("\n")
        .filter((l) => l.startsWith("\u2014 witness.test"))
        .join("\n") +
      "\n";
    expect(() => verifyCosignature(moved, parseVerifierKey(witness.vkey))).toThrow(/does not verify/);
  });
});
