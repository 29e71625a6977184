import { asc, eq, gt } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { balances, checkpoints, entries, head } from "../db/schema.js";
import {
  openCheckpoint,
  entryHash,
  entryLeafHash,
  GENESIS_HASH,
  parseSnapshotMeta,
  CompactRange,
  type NoteVerifier,
} from "@potluck/ledger-proof";
import { recordOf, type EntryRow } from "./rows.js";
import { snapshotRoot } from "./snapshot.js";

/** Rows per page while replaying; the replay holds one page plus the leaf hashes in memory. */
const AUDIT_PAGE_ROWS = 10_000;

export interface AuditProblem {
  /** The first bad entry's sequence number, or undefined when the problem is not one entry's. */
  seq?: number;
  eventId?: string;
  what: string;
}

export interface AuditReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  snapshots: number;
  /** The first problem found, naming the entry. */
  problem?: AuditProblem;
}

/**
 * Replays the chain from the start (or checks links only after a known-good hash with `fromHash`),
 * recomputes every hash, link, balance, snapshot root and checkpoint root, verifies checkpoint
 * signatures, and stops at the first problem, naming the entry.
 */
export async function auditLedger(
  db: LedgerDb,
  logKey: NoteVerifier,
  options: { fromHash?: string } = {},
): Promise<AuditReport> {
  const cps = await db.select().from(checkpoints).orderBy(asc(checkpoints.size));
  const state = {
    seq: 0,
    prev: GENESIS_HASH,
    linking: options.fromHash === undefined,
    leaves: new CompactRange(),
    balances: new Map<string, number>(),
    held: new Map<string, number>(),
    snapshots: 0,
  };
  let cpIndex = 0;
  const report = (problem: AuditProblem): AuditReport => ({
    ok: false,
    entries: state.seq,
    checkpoints: cpIndex,
    snapshots: state.snapshots,
    problem,
  });
  for (;;) {
    const rows = await db
      .select()
      .from(entries)
      .where(gt(entries.seq, state.seq - 1))
      .orderBy(asc(entries.seq))
      .limit(AUDIT_PAGE_ROWS);
    for (const row of rows) {
      const problem = checkEntry(row, state, options.fromHash);
      if (problem !== undefined) return report(problem);
      while (cps[cpIndex] !== undefined && cps[cpIndex]?.size === state.seq) {
        const cpProblem = checkCheckpoint(cps[cpIndex] as typeof checkpoints.$inferSelect, state.leaves, logKey);
        if (cpProblem !== undefined) return report(cpProblem);
        cpIndex += 1;
      }
    }
    if (rows.length < AUDIT_PAGE_ROWS) break;
  }
  if (options.fromHash !== undefined && !state.linking)
    return report({ what: `no entry has hash ${options.fromHash}` });
  const tail = await checkTail(db, state, cps.slice(cpIndex));
  return tail === undefined
    ? { ok: true, entries: state.seq, checkpoints: cpIndex, snapshots: state.snapshots }
    : report(tail);
}

type ReplayState = {
  seq: number;
  prev: string;
  linking: boolean;
  leaves: CompactRange;
  balances: Map<string, number>;
  held: Map<string, number>;
  snapshots: number;
};

function checkEntry(row: EntryRow, s: ReplayState, fromHash: string | undefined): AuditProblem | undefined {
  const at = { seq: row.seq, eventId: row.eventId };
  if (row.seq !== s.seq)
    return {
      seq: s.seq,
      what: `entry ${s.seq} is missing (the next row is ${row.seq}): rows were deleted or renumbered`,
    };
  let record;
  try {
    record = recordOf(row);
  } catch (error) {
    return { ...at, what: (error as Error).message };
  }
  if (s.linking && row.prevHash !== s.prev)
    return {
      ...at,
      what: `entry ${row.seq} does not link to entry ${row.seq - 1}: its previous hash ${row.prevHash} is not ${s.prev}`,
    };
  const hash = entryHash(record);
  if (s.linking && hash !== row.hash)
    return { ...at, what: `entry ${row.seq} was altered: its fields hash to ${hash}, not the stored ${row.hash}` };
  if (!s.linking && row.hash === fromHash) s.linking = true;
  if (record.kind === "snapshot") {
    let meta;
    try {
      meta = parseSnapshotMeta(record.meta);
    } catch (error) {
      return { ...at, what: `snapshot entry ${row.seq}: ${(error as Error).message}` };
    }
    const rows = [...s.balances].map(([account, balance]) => ({ account, balance }));
    if (meta.asOfSize !== row.seq || meta.accounts !== rows.length || meta.root !== snapshotRoot(rows, row.seq)) {
      return { ...at, what: `snapshot entry ${row.seq} does not match the balances replayed up to it` };
    }
    s.snapshots += 1;
  } else {
    s.balances.set(row.account, (s.balances.get(row.account) ?? 0) + row.delta);
    s.held.set(row.account, (s.held.get(row.account) ?? 0) + row.heldDelta);
  }
  s.leaves.append(entryLeafHash(record));
  s.prev = row.hash;
  s.seq += 1;
  return undefined;
}

function checkCheckpoint(
  cp: typeof checkpoints.$inferSelect,
  leaves: CompactRange,
  logKey: NoteVerifier,
): AuditProblem | undefined {
  try {
    const body = openCheckpoint(cp.note, logKey);
    const root = Buffer.from(leaves.root()).toString("hex");
    if (body.size !== cp.size || body.root.toString("hex") !== cp.root)
      return { what: `checkpoint at size ${cp.size}: the stored row differs from its signed note` };
    if (root !== cp.root)
      return {
        seq: cp.size - 1,
        what: `checkpoint at size ${cp.size} no longer matches the log: entries before it were rewritten`,
      };
  } catch (error) {
    return { what: `checkpoint at size ${cp.size}: ${(error as Error).message}` };
  }
  return undefined;
}

async function checkTail(
  db: LedgerDb,
  s: ReplayState,
  laterCps: (typeof checkpoints.$inferSelect)[],
): Promise<AuditProblem | undefined> {
  const first = laterCps[0];
  if (first !== undefined)
    return { seq: s.seq, what: `checkpoint at size ${first.size} covers entries that are missing (log has ${s.seq})` };
  const [h] = await db.select().from(head).where(eq(head.id, 1));
  if (h === undefined || h.size !== s.seq || h.lastHash !== s.prev)
    return { what: `the head (size ${h?.size}) does not match the replayed log (size ${s.seq})` };
  const stored = await db.select().from(balances);
  const storedMap = new Map(stored.map((b) => [b.account, b]));
  for (const [account, balance] of s.balances) {
    const b = storedMap.get(account);
    if (b === undefined || b.balance !== balance || b.held !== (s.held.get(account) ?? 0))
      return {
        what: `balance of ${account} is ${b?.balance}/${b?.held} held, the entries sum to ${balance}/${s.held.get(account) ?? 0}`,
      };
  }
  if (stored.length !== s.balances.size)
    return { what: `the balances table has ${stored.length} accounts, the entries ${s.balances.size}` };
  return undefined;
}
