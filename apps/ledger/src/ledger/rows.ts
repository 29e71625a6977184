import type { entries } from "../db/schema.js";
import { KindCode, type LedgerRecord, type RecordKind } from "@potluck/ledger-proof";

export type EntryRow = typeof entries.$inferSelect;

/** A stored row as the record it claims to be; an unknown kind is reported, not guessed. */
export function recordOf(row: EntryRow): LedgerRecord {
  if (!(row.kind in KindCode)) throw new Error(`entry ${row.seq} has unknown kind ${JSON.stringify(row.kind)}`);
  return {
    seq: row.seq,
    eventId: row.eventId,
    kind: row.kind as RecordKind,
    account: row.account,
    delta: row.delta,
    heldDelta: row.heldDelta,
    ref: row.ref,
    meta: row.meta,
    payloadHash: row.payloadHash,
    createdAtMs: row.createdAtMs,
    prevHash: row.prevHash,
  };
}
