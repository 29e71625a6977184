import { and, asc, eq, lte, sql } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { anchorOutbox, checkpoints } from "../db/schema.js";
import type { StoredCheckpoint } from "../ledger/log.js";
import type { Anchor } from "./anchor.js";

/** Backoff between attempts doubles from base to max; after attemptsMax a row is marked failed. */
export const OutboxLimits = { backoffMsBase: 1_000, backoffMsMax: 300_000, attemptsMax: 50, rowsPerRound: 16 } as const;

/** Queues a new checkpoint for every anchor. Called when the checkpoint is stored. */
export async function enqueueAnchors(
  db: LedgerDb,
  anchors: readonly Anchor[],
  cp: StoredCheckpoint,
  nowMs: number = Date.now(),
): Promise<void> {
  if (anchors.length === 0) return;
  // Due "now" by the same clock drainOutbox compares with (the database's now() has microseconds
  // and could land after a millisecond-truncated JS time, delaying a fresh row by one round).
  await db
    .insert(anchorOutbox)
    .values(
      anchors.map((a) => ({
        anchor: a.kind,
        checkpointSize: cp.size,
        state: "pending",
        nextAttemptAt: new Date(nowMs),
      })),
    )
    .onConflictDoNothing({ target: [anchorOutbox.anchor, anchorOutbox.checkpointSize] });
}

/**
 * One round of the outbox: publishes due rows (oldest checkpoint first), records receipts, and
 * pushes failures back with bounded exponential backoff. Metering never waits for this: it runs
 * on its own timer and an anchor that is down only leaves rows pending.
 */
export async function drainOutbox(
  db: LedgerDb,
  anchors: readonly Anchor[],
  nowMs: number = Date.now(),
): Promise<{ published: number; failed: number }> {
  const byKind = new Map(anchors.map((a) => [a.kind, a]));
  let published = 0;
  let failed = 0;
  await db.transaction(async (tx) => {
    const due = await tx
      .select({ row: anchorOutbox, note: checkpoints.note, root: checkpoints.root })
      .from(anchorOutbox)
      .innerJoin(checkpoints, eq(checkpoints.size, anchorOutbox.checkpointSize))
      .where(and(eq(anchorOutbox.state, "pending"), lte(anchorOutbox.nextAttemptAt, new Date(nowMs))))
      .orderBy(asc(anchorOutbox.checkpointSize))
      .limit(OutboxLimits.rowsPerRound)
      .for("update", { of: anchorOutbox, skipLocked: true });
    for (const { row, note, root } of due) {
      const anchor = byKind.get(row.anchor);
      if (anchor === undefined) continue;
      try {
        const receipt = await anchor.publish({ size: row.checkpointSize, root, note });
        await tx
          .update(anchorOutbox)
          .set({ state: "done", receipt, attempts: row.attempts + 1, lastError: null })
          .where(eq(anchorOutbox.id, row.id));
        published += 1;
      } catch (error) {
        const attempts = row.attempts + 1;
        const waitMs = Math.min(OutboxLimits.backoffMsBase * 2 ** Math.min(attempts, 20), OutboxLimits.backoffMsMax);
        await tx
          .update(anchorOutbox)
          .set({
            attempts,
            state: attempts >= OutboxLimits.attemptsMax ? "failed" : "pending",
            lastError: String((error as Error).message).slice(0, 500),
            nextAttemptAt: new Date(nowMs + waitMs),
          })
          .where(eq(anchorOutbox.id, row.id));
        failed += 1;
      }
    }
  });
  return { published, failed };
}

export async function anchorReceipts(db: LedgerDb, size: number): Promise<{ kind: string; receipt: string }[]> {
  const rows = await db
    .select({ kind: anchorOutbox.anchor, receipt: anchorOutbox.receipt })
    .from(anchorOutbox)
    .where(
      and(
        eq(anchorOutbox.checkpointSize, size),
        eq(anchorOutbox.state, "done"),
        sql`${anchorOutbox.receipt} is not null`,
      ),
    );
  return rows.map((r) => ({ kind: r.kind, receipt: r.receipt ?? "" }));
}

export async function outboxCounts(db: LedgerDb): Promise<Record<string, number>> {
  const rows = await db
    .select({ state: anchorOutbox.state, n: sql<string>`count(*)` })
    .from(anchorOutbox)
    .groupBy(anchorOutbox.state);
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}
