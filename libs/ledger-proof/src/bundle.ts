import { ProofBundle, check } from "@potluck/protocol";
import { openCheckpoint, verifyCosignature } from "./checkpoint.js";
import { decodeEntry, encodeBalanceLeaf, parseSnapshotMeta } from "./entry.js";
import { leafHash, ProofError, verifyInclusion } from "./merkle.js";
import { parseVerifierKey, type NoteVerifier } from "./note.js";

export interface BundleVerdict {
  account: string;
  balance: number;
  asOfSize: number;
  origin: string;
  checkpointSize: number;
  /** One line per anchor receipt: verified, or why not (an unknown witness key is "unchecked"). */
  anchors: { kind: string; status: "verified" | "unchecked" | "failed"; detail: string }[];
}

/**
 * Verifies a member's proof bundle offline with nothing but the log's public key (and, optionally,
 * witness keys for anchor receipts). Each step is checked in order — balance leaf → snapshot root
 * → snapshot entry → log inclusion → signed checkpoint — and the first failure throws ProofError
 * naming the step. Anchor receipts that cannot be checked are reported, never silently passed.
 */
export function verifyProofBundle(input: unknown, logKey: string, witnessKeys: readonly string[] = []): BundleVerdict {
  const parsed = check(ProofBundle, input);
  if (!parsed.ok) throw new ProofError(`proof bundle is malformed: ${parsed.body.error.message}`);
  const b = parsed.data;
  const verifier = parseVerifierKey(logKey);
  const cp = step("checkpoint signature", () => openCheckpoint(b.checkpoint, verifier));
  const entryBytes = Buffer.from(b.inclusion.entry, "base64");
  const entry = step("snapshot entry", () => decodeEntry(entryBytes));
  const meta = step("snapshot entry", () => parseSnapshotMeta(entry.meta));
  if (entry.kind !== "snapshot")
    throw new ProofError(`snapshot entry: entry ${entry.seq} is a ${entry.kind}, not a snapshot`);
  if (entry.seq !== b.inclusion.leafIndex || entry.seq !== b.snapshot.seq)
    throw new ProofError("snapshot entry: its sequence number does not match the proof's leaf index");
  if (meta.asOfSize !== entry.seq || meta.asOfSize !== b.snapshot.asOfSize)
    throw new ProofError("snapshot entry: as-of size does not match its position in the log");
  if (meta.root !== b.snapshot.root || meta.accounts !== b.snapshot.size)
    throw new ProofError("snapshot entry: root or account count differs from the bundle's snapshot");
  if (b.inclusion.treeSize !== cp.size)
    throw new ProofError(`log inclusion: proof is for size ${b.inclusion.treeSize}, checkpoint is for ${cp.size}`);
  step("log inclusion", () =>
    verifyInclusion(entry.seq, cp.size, leafHash(entryBytes), hexes(b.inclusion.proof), cp.root),
  );
  const leaf = leafHash(encodeBalanceLeaf(b.account, b.balance, meta.asOfSize));
  step("balance in snapshot", () =>
    verifyInclusion(
      b.snapshot.leafIndex,
      b.snapshot.size,
      leaf,
      hexes(b.snapshot.proof),
      Buffer.from(meta.root, "hex"),
    ),
  );
  const witnesses = witnessKeys.map(parseVerifierKey);
  return {
    account: b.account,
    balance: b.balance,
    asOfSize: meta.asOfSize,
    origin: cp.origin,
    checkpointSize: cp.size,
    anchors: b.anchors.map((a) => checkAnchor(a, b.checkpoint, verifier, witnesses)),
  };
}

function checkAnchor(
  a: { kind: string; receipt: string },
  checkpoint: string,
  log: NoteVerifier,
  witnesses: NoteVerifier[],
): BundleVerdict["anchors"][number] {
  const text = checkpoint.slice(0, checkpoint.indexOf("\n\n") + 1);
  if (!a.receipt.startsWith(text))
    return { kind: a.kind, status: "failed", detail: "receipt is for a different checkpoint" };
  try {
    openCheckpoint(a.receipt, log);
    if (a.kind !== "witness")
      return { kind: a.kind, status: "verified", detail: "receipt carries the log's signature on this checkpoint" };
    for (const w of witnesses) {
      if (a.receipt.includes(`\u2014 ${w.name} `))
        return {
          kind: a.kind,
          status: "verified",
          detail: `cosigned by ${w.name} at ${new Date(verifyCosignature(a.receipt, w) * 1000).toISOString()}`,
        };
    }
    return { kind: a.kind, status: "unchecked", detail: "no key given for the witness that cosigned it" };
  } catch (error) {
    return { kind: a.kind, status: "failed", detail: (error as Error).message };
  }
}

function step<T>(name: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw new ProofError(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

function hexes(list: readonly string[]): Buffer[] {
  return list.map((h) => Buffer.from(h, "hex"));
}
