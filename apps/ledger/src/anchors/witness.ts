import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import {
  appendSignature,
  cosignLine,
  openCheckpoint,
  verifyConsistency,
  verifyCosignature,
  type NoteSigner,
  type NoteVerifier,
} from "@potluck/ledger-proof";
import type { StoredCheckpoint } from "../ledger/log.js";
import { AnchorError, type Anchor } from "./anchor.js";

/** The witness's answer when the caller's idea of what it last saw is wrong. */
export class WitnessConflict extends Error {
  override name = "WitnessConflict";
  constructor(readonly knownSize: number) {
    super(`the witness last saw size ${knownSize}`);
  }
}

/**
 * A witness in the style of C2SP tlog-witness: it remembers the last checkpoint it cosigned for
 * one log and cosigns a new one only with a valid consistency proof from that one, so a log that
 * rewrites history can no longer collect its signatures.
 */
export class Witness {
  private last: { size: number; root: Buffer } = { size: 0, root: Buffer.alloc(0) };

  /**
   * `statePath` keeps the last cosigned size and root across restarts; without it a restarted
   * witness would accept any history as its first.
   */
  constructor(
    private readonly logKey: NoteVerifier,
    private readonly signer: NoteSigner,
    private readonly clockS: () => number = () => Math.floor(Date.now() / 1000),
    private readonly statePath?: string,
  ) {
    if (statePath !== undefined && existsSync(statePath)) {
      const saved = JSON.parse(readFileSync(statePath, "utf8")) as { size?: unknown; root?: unknown };
      if (typeof saved.size !== "number" || typeof saved.root !== "string")
        throw new AnchorError(`witness state ${statePath} is malformed`);
      this.last = { size: saved.size, root: Buffer.from(saved.root, "hex") };
    }
  }

  /** Returns the cosignature line for `note`, or throws (WitnessConflict when `oldSize` is stale). */
  addCheckpoint(oldSize: number, proof: Buffer[], note: string): string {
    const body = openCheckpoint(note, this.logKey);
    if (oldSize !== this.last.size) throw new WitnessConflict(this.last.size);
    if (body.size < this.last.size)
      throw new AnchorError(`checkpoint size ${body.size} is older than ${this.last.size}`);
    if (this.last.size > 0) verifyConsistency(this.last.size, body.size, proof, this.last.root, body.root);
    this.last = { size: body.size, root: body.root };
    if (this.statePath !== undefined) {
      // Written before the cosignature leaves, and atomically, so a crash cannot roll the witness back.
      writeFileSync(`${this.statePath}.tmp`, JSON.stringify({ size: body.size, root: body.root.toString("hex") }));
      renameSync(`${this.statePath}.tmp`, this.statePath);
    }
    return cosignLine(note.slice(0, note.indexOf("\n\n") + 1), this.signer, this.clockS());
  }
}

/** Publishes checkpoints to a witness over HTTP; the receipt is the checkpoint with the cosignature added. */
export class WitnessAnchor implements Anchor {
  readonly kind = "witness";

  constructor(
    private readonly url: string,
    private readonly witnessKey: NoteVerifier,
    private readonly consistency: (size1: number, size2: number) => Promise<Buffer[]>,
    private readonly timeoutMs = 5_000,
  ) {}

  async publish(cp: StoredCheckpoint): Promise<string> {
    let oldSize = this.knownSize;
    // Two rounds at most: the first may learn the witness's real size from a 409.
    for (let round = 0; round < 2; round += 1) {
      const proof = oldSize > 0 && oldSize < cp.size ? await this.consistency(oldSize, cp.size) : [];
      const res = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ oldSize, proof: proof.map((p) => p.toString("hex")), checkpoint: cp.note }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const body = (await res.json().catch(() => ({}))) as {
        cosignature?: string;
        knownSize?: number;
        error?: { message?: string };
      };
      if (res.status === 409 && typeof body.knownSize === "number") {
        oldSize = body.knownSize;
        continue;
      }
      if (!res.ok || typeof body.cosignature !== "string")
        throw new AnchorError(`witness answered ${res.status}: ${body.error?.message ?? "no cosignature"}`);
      const receipt = appendSignature(cp.note, body.cosignature);
      verifyCosignature(receipt, this.witnessKey);
      this.knownSize = cp.size;
      return receipt;
    }
    throw new AnchorError("witness kept changing its size");
  }

  async verify(cp: StoredCheckpoint, receipt: string): Promise<void> {
    if (!receipt.startsWith(cp.note.slice(0, cp.note.indexOf("\n\n") + 1)))
      throw new AnchorError(`receipt is not for checkpoint ${cp.size}`);
    verifyCosignature(receipt, this.witnessKey);
  }

  private knownSize = 0;
}
