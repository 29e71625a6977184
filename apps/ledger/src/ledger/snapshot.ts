import { and, desc, eq, lt, ne, sql } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { markAppendPath } from "../db/append-path.js";
import { balances, entries, head } from "../db/schema.js";
import {
  balanceLeafHash,
  compareAccounts,
  compareAscii,
  isAscii,
  entryHash,
  GENESIS_HASH,
  parseSnapshotMeta,
  snapshotMeta,
  type LedgerRecord,
  type SnapshotMeta,
  inclusionProof,
  merkleRoot,
} from "@potluck/ledger-proof";
import { recordOf } from "./rows.js";
import { parallelSnapshotRoot, SnapshotHashLimits, snapshotRootFromDb } from "./snapshot-hash.js";
import type { BalanceRow } from "./balance-row.js";

/** Leaf hashes of a balance set sorted by account bytes: the snapshot tree's leaves. */
export function balanceLeaves(
  rows: readonly BalanceRow[],
  asOfSize: number,
): { sorted: BalanceRow[]; leaves: Buffer[] } {
  const sorted = sortedByAccount(rows);
  return { sorted, leaves: sorted.map((r) => balanceLeafHash(r.account, r.balance, asOfSize)) };
}

/** The rows in account byte order; rows the database already sorted (collate "C") are only checked. */
function sortedByAccount(rows: readonly BalanceRow[]): BalanceRow[] {
  // Checked once, so the million comparisons of a large snapshot are plain string comparisons.
  const cmp = rows.every((r) => isAscii(r.account)) ? compareAscii : compareAccounts;
  return isSorted(rows, cmp) ? rows.slice() : [...rows].sort((a, b) => cmp(a.account, b.account));
}

function isSorted(rows: readonly BalanceRow[], cmp: (a: string, b: string) => number): boolean {
  for (let i = 1; i < rows.length; i += 1)
    if (cmp((rows[i - 1] as BalanceRow).account, (rows[i] as BalanceRow).account) >= 0) return false;
  return true;
}

export function snapshotRoot(rows: readonly BalanceRow[], asOfSize: number): string {
  return Buffer.from(merkleRoot(balanceLeaves(rows, asOfSize).leaves)).toString("hex");
}

/** snapshotRoot, with large sets hashed on worker threads (see snapshot-hash.ts); same result. */
export async function snapshotRootParallel(rows: readonly BalanceRow[], asOfSize: number): Promise<string> {
  if (rows.length < SnapshotHashLimits.inlineLeavesMax) return snapshotRoot(rows, asOfSize);
  return (await parallelSnapshotRoot(sortedByAccount(rows), asOfSize)).toString("hex");
}

/**
 * Takes a balance snapshot: under the head lock, reads every balance, builds the Merkle tree over
 * the sorted (account, balance, as-of size) leaves and appends its root as a snapshot entry, so
 * the next checkpoint covers it. Returns the new entry's meta and sequence number.
 */
export async function takeSnapshot(db: LedgerDb, nowMs: number = Date.now()): Promise<SnapshotMeta & { seq: number }> {
  return db.transaction(async (tx) => {
    await markAppendPath(tx);
    const [h] = await tx.select().from(head).where(eq(head.id, 1)).for("update");
    if (h === undefined) throw new Error("snapshot: the head row is missing");
    const meta: SnapshotMeta = { asOfSize: h.size, ...(await snapshotRootFromDb(tx, h.size)) };
    // '#' is outside ClientId, so no client event can claim a snapshot's id.
    const record: LedgerRecord = {
      seq: h.size,
      eventId: `snapshot#${h.size}`,
      kind: "snapshot",
      account: "",
      delta: 0,
      heldDelta: 0,
      ref: "",
      meta: snapshotMeta(meta),
      payloadHash: GENESIS_HASH,
      createdAtMs: nowMs,
      prevHash: h.lastHash,
    };
    const hash = entryHash(record);
    await tx.insert(entries).values({ ...record, hash });
    await tx
      .update(head)
      .set({ size: h.size + 1, lastHash: hash })
      .where(eq(head.id, 1));
    return { ...meta, seq: h.size };
  });
}

export async function latestSnapshot(
  db: LedgerDb,
): Promise<(SnapshotMeta & { seq: number; record: LedgerRecord }) | undefined> {
  const [row] = await db.select().from(entries).where(eq(entries.kind, "snapshot")).orderBy(desc(entries.seq)).limit(1);
  if (row === undefined) return undefined;
  return { ...parseSnapshotMeta(row.meta), seq: row.seq, record: recordOf(row) };
}

/** Balances as of a log size, recomputed from the entries themselves (not the balances table). */
export async function balancesAsOf(db: LedgerDb, asOfSize: number): Promise<BalanceRow[]> {
  const rows = await db
    .select({ account: entries.account, balance: sql<string>`sum(${entries.delta})` })
    .from(entries)
    .where(and(lt(entries.seq, asOfSize), ne(entries.kind, "snapshot")))
    .groupBy(entries.account);
  return rows.map((r) => ({ account: r.account, balance: Number(r.balance) }));
}

/** A snapshot's tree, rebuilt from the entries once and kept for the proofs that follow it. */
export interface SnapshotTree {
  asOfSize: number;
  sorted: BalanceRow[];
  leaves: Buffer[];
  root: string;
  index: Map<string, number>;
}

export async function snapshotTree(db: LedgerDb, asOfSize: number): Promise<SnapshotTree> {
  const { sorted, leaves } = balanceLeaves(await balancesAsOf(db, asOfSize), asOfSize);
  return {
    asOfSize,
    sorted,
    leaves,
    root: Buffer.from(merkleRoot(leaves)).toString("hex"),
    index: new Map(sorted.map((r, i) => [r.account, i])),
  };
}

/** The account's leaf index, balance and audit path in a snapshot tree. */
export function snapshotProof(
  tree: SnapshotTree,
  account: string,
): { leafIndex: number; size: number; balance: number; proof: Buffer[]; root: string } | undefined {
  const leafIndex = tree.index.get(account);
  const row = leafIndex === undefined ? undefined : tree.sorted[leafIndex];
  if (leafIndex === undefined || row === undefined) return undefined;
  return {
    leafIndex,
    size: tree.leaves.length,
    balance: row.balance,
    proof: inclusionProof(tree.leaves, leafIndex).map((h) => Buffer.from(h)),
    root: tree.root,
  };
}
