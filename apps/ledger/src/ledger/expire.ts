import { and, eq, gt, inArray, lt, notExists, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { LedgerDb } from "../db/open.js";
import { balances, entries } from "../db/schema.js";
import { canonicalJson, type IncomingEvent } from "./events.js";
import { hash } from "node:crypto";

/**
 * The ledger's own backstop against a hold nobody closes. The sidecars close every hold when its
 * stream ends (the server settles before its done chunk; the requester voids whatever else), but
 * a requester that crashes between placing a hold and closing it, or a server that names a
 * settlement it never published, would leave credits held forever. A hold open longer than
 * `openMsMax` is voided by the ledger (as the operator: either party may void, and so may it).
 * The bound is far above any job: a settlement that still arrives after it is refused
 * (`hold_closed`) and counted, so the server of a job that long is not paid.
 */
export const HoldExpiry = {
  openMsMax: 15 * 60_000,
  /** Holds voided per sweep (the next sweep takes the rest). */
  sweepMax: 500,
} as const;

/** The void events for holds placed before `nowMs − openMsMax` and neither settled nor voided. */
export async function expiredHolds(
  db: LedgerDb,
  nowMs: number,
  openMsMax: number = HoldExpiry.openMsMax,
): Promise<IncomingEvent[]> {
  const closing = alias(entries, "closing");
  const open = await db
    .select({ eventId: entries.eventId, account: entries.account })
    .from(entries)
    .where(
      and(
        // Only accounts holding something can have an open hold: the index on account finds their entries.
        inArray(entries.account, db.select({ account: balances.account }).from(balances).where(gt(balances.held, 0))),
        eq(entries.kind, "hold"),
        lt(entries.createdAtMs, nowMs - openMsMax),
        notExists(
          db
            .select({ one: sql`1` })
            .from(closing)
            .where(and(eq(closing.ref, entries.eventId), inArray(closing.kind, ["settle", "void"]))),
        ),
      ),
    )
    .limit(HoldExpiry.sweepMax);
  return open.map(({ eventId, account }) => {
    const payload = canonicalJson({ kind: "void", eventId: `${eventId}:expired`, account, holdEventId: eventId });
    return {
      eventId: `${eventId}:expired`,
      kind: "void",
      account,
      amount: 0,
      ref: eventId,
      payee: "",
      meta: canonicalJson({ reason: `open more than ${openMsMax / 1000} s` }),
      payload,
      payloadHash: hash("sha256", payload, "hex"),
    };
  });
}
