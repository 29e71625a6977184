import { asc, eq } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { anchorOutbox, checkpoints } from "../db/schema.js";
import { openCheckpoint, verifyCosignature, type NoteVerifier } from "@potluck/ledger-proof";

export interface AnchorAudit {
  checked: number;
  pending: number;
  /** Receipts that carry no signature this audit could check (no key for that witness). */
  unchecked: number;
  problem?: string;
}

/**
 * Checks every anchor receipt the ledger recorded: it must be for the checkpoint it is filed
 * under, carry the log's valid signature, and (for witnesses whose key is given) a valid
 * cosignature. Pending rows are counted: an anchor that is behind is reported, not an error.
 */
export async function auditAnchors(
  db: LedgerDb,
  logKey: NoteVerifier,
  witnessKeys: readonly NoteVerifier[] = [],
): Promise<AnchorAudit> {
  const rows = await db
    .select({ row: anchorOutbox, note: checkpoints.note })
    .from(anchorOutbox)
    .innerJoin(checkpoints, eq(checkpoints.size, anchorOutbox.checkpointSize))
    .orderBy(asc(anchorOutbox.checkpointSize));
  const out: AnchorAudit = { checked: 0, pending: 0, unchecked: 0 };
  for (const { row, note } of rows) {
    if (row.state !== "done") {
      out.pending += 1;
      continue;
    }
    const receipt = row.receipt ?? "";
    const where = `${row.anchor} receipt for checkpoint ${row.checkpointSize}`;
    try {
      if (!receipt.startsWith(note.slice(0, note.indexOf("\n\n") + 1)))
        return { ...out, problem: `${where} is for a different checkpoint` };
      openCheckpoint(receipt, logKey);
      if (row.anchor === "witness") {
        const witness = witnessKeys.find((w) => receipt.includes(`\u2014 ${w.name} `));
        if (witness === undefined) out.unchecked += 1;
        else verifyCosignature(receipt, witness);
      }
      out.checked += 1;
    } catch (error) {
      return { ...out, problem: `${where}: ${(error as Error).message}` };
    }
  }
  return out;
}
