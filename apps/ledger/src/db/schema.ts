import { sql } from "drizzle-orm";
import { bigint, bigserial, check, index, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

/**
 * The ledger's tables. Entries are append-only (triggers in the append_only migration refuse
 * UPDATE, DELETE, TRUNCATE and any insert that does not extend the chain); everything else is
 * derived state kept in the same transaction as the entries it follows.
 */
export const entries = pgTable(
  "entries",
  {
    seq: bigint("seq", { mode: "number" }).primaryKey(),
    eventId: text("event_id").notNull(),
    kind: text("kind").notNull(),
    account: text("account").notNull(),
    delta: bigint("delta", { mode: "number" }).notNull(),
    heldDelta: bigint("held_delta", { mode: "number" }).notNull(),
    ref: text("ref").notNull(),
    meta: text("meta").notNull(),
    payloadHash: text("payload_hash").notNull(),
    createdAtMs: bigint("created_at_ms", { mode: "number" }).notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    uniqueIndex("entries_event_id").on(t.eventId),
    uniqueIndex("entries_prev_hash").on(t.prevHash),
    index("entries_account_seq").on(t.account, t.seq),
    // Most entries refer to nothing; a partial index keeps the append path from maintaining them.
    index("entries_ref_set")
      .on(t.ref)
      .where(sql`ref <> ''`),
    // A hold closes once: a second settle or void of the same hold is refused by the database.
    uniqueIndex("entries_hold_closed_once")
      .on(t.ref)
      .where(sql`kind in ('settle', 'void')`),
    check("entries_seq_nonnegative", sql`${t.seq} >= 0`),
    // Same rule as '^[0-9a-f]{64}$', written as a length plus a negated class: PostgreSQL's regex
    // engine expands {64} into a 64-state automaton per row; the class scan is an order of
    // magnitude cheaper (BENCHMARKS.md, "Ledger").
    check(
      "entries_hashes_hex",
      sql`length(${t.prevHash}) = 64 and length(${t.hash}) = 64 and ${t.prevHash} !~ '[^0-9a-f]' and ${t.hash} !~ '[^0-9a-f]'`,
    ),
  ],
);

/**
 * One row: the chain's head. Every append locks it (SELECT … FOR UPDATE) in its transaction; only the append path
 * writes it (migration 0007).
 */
export const head = pgTable(
  "head",
  {
    id: integer("id").primaryKey(),
    size: bigint("size", { mode: "number" }).notNull(),
    lastHash: text("last_hash").notNull(),
  },
  (t) => [check("head_single_row", sql`${t.id} = 1`)],
);

/**
 * Derived from the entries, written only by the append path (the triggers of migration 0007
 * refuse any other write) and kept within LedgerAmounts.balanceMicroMax by a check constraint.
 */
export const balances = pgTable(
  "balances",
  {
    account: text("account").primaryKey(),
    balance: bigint("balance", { mode: "number" }).notNull(),
    held: bigint("held", { mode: "number" }).notNull(),
    asOfSeq: bigint("as_of_seq", { mode: "number" }).notNull(),
  },
  (t) => [
    check(
      "balances_within_limits",
      sql`${t.balance} >= 0 and ${t.balance} <= 1000000000000000 and ${t.held} >= 0 and ${t.held} <= ${t.balance}`,
    ),
  ],
);

/** Events refused (conflicting duplicate ids, overdraws, unknown holds …), kept for the operator. */
export const rejections = pgTable(
  "rejections",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    eventId: text("event_id").notNull(),
    code: text("code").notNull(),
    reason: text("reason").notNull(),
    payloadHash: text("payload_hash").notNull(),
    payload: text("payload").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("rejections_event_id").on(t.eventId)],
);

export const checkpoints = pgTable("checkpoints", {
  size: bigint("size", { mode: "number" }).primaryKey(),
  root: text("root").notNull(),
  note: text("note").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Checkpoints waiting to be published to an anchor; retried with bounded backoff. */
export const anchorOutbox = pgTable(
  "anchor_outbox",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    anchor: text("anchor").notNull(),
    checkpointSize: bigint("checkpoint_size", { mode: "number" }).notNull(),
    state: text("state").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    lastError: text("last_error"),
    receipt: text("receipt"),
  },
  (t) => [
    uniqueIndex("anchor_outbox_once").on(t.anchor, t.checkpointSize),
    index("anchor_outbox_due").on(t.state, t.nextAttemptAt),
  ],
);

/**
 * Usage messages the ingest could not apply (malformed, or an append that failed for them alone),
 * acknowledged so later batches flow and kept for the operator. One row per stream message.
 */
export const parked = pgTable(
  "parked",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    streamSeq: bigint("stream_seq", { mode: "number" }).notNull(),
    subject: text("subject").notNull(),
    eventId: text("event_id").notNull(),
    reason: text("reason").notNull(),
    payload: text("payload").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("parked_stream_seq").on(t.streamSeq)],
);
