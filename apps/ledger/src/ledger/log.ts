import { asc, desc, eq, gte, lt, and } from "drizzle-orm";
import type { LedgerDb } from "../db/open.js";
import { checkpoints, entries, head } from "../db/schema.js";
import {
  signCheckpoint,
  entryLeafHash,
  CompactRange,
  consistencyProof,
  inclusionProof,
  merkleRoot,
  subtreeRoot,
  type NoteSigner,
} from "@potluck/ledger-proof";
import { recordOf } from "./rows.js";

/** Rows read per query when catching the leaf cache up; bounds memory per round trip. */
const LEAF_PAGE_ROWS = 20_000;

/**
 * The Merkle log over the entries. Leaf hashes are cached in memory and caught up from the
 * database on demand, so a checkpoint or proof costs one pass over new entries, not the whole log.
 */
export class MerkleLog {
  private leaves: Buffer[] = [];
  private readonly range = new CompactRange();
  /** Checkpoint roots already matched against this cache; each is recomputed at most once per process. */
  private readonly matched = new Map<number, string>();

  constructor(private readonly db: LedgerDb) {}

  /** The committed log size (entries up to the head). */
  async size(): Promise<number> {
    const [h] = await this.db.select({ size: head.size }).from(head).where(eq(head.id, 1));
    return h?.size ?? 0;
  }

  /** Leaf hashes of the first `size` entries. */
  async leafHashes(size: number): Promise<Buffer[]> {
    while (this.leaves.length < size) {
      const rows = await this.db
        .select()
        .from(entries)
        .where(and(gte(entries.seq, this.leaves.length), lt(entries.seq, size)))
        .orderBy(asc(entries.seq))
        .limit(LEAF_PAGE_ROWS);
      if (rows.length === 0) throw new Error(`log: entry ${this.leaves.length} is missing below size ${size}`);
      for (const row of rows) {
        if (row.seq !== this.leaves.length)
          throw new Error(`log: expected entry ${this.leaves.length}, found ${row.seq}`);
        const leaf = entryLeafHash(recordOf(row));
        this.leaves.push(leaf);
        this.range.append(leaf);
      }
    }
    return this.leaves.slice(0, size);
  }

  /** The root at `size`: O(log n) at the cache's edge (the usual case, a new checkpoint), else O(n). */
  async root(size: number): Promise<Buffer> {
    const leaves = await this.leafHashes(size);
    return Buffer.from(this.range.size === size ? this.range.root() : merkleRoot(leaves));
  }

  /** Whether the first `size` entries still hash to `rootHex` (remembered once true). */
  async matches(size: number, rootHex: string): Promise<boolean> {
    if (this.matched.get(size) === rootHex) return true;
    const ok = (await this.prefixRoot(size)).toString("hex") === rootHex;
    if (ok) this.matched.set(size, rootHex);
    return ok;
  }

  remember(size: number, rootHex: string): void {
    this.matched.set(size, rootHex);
  }

  async inclusion(index: number, size: number): Promise<Buffer[]> {
    return inclusionProof(await this.leafHashes(size), index, size).map((h) => Buffer.from(h));
  }

  async consistency(size1: number, size2: number): Promise<Buffer[]> {
    return consistencyProof(await this.leafHashes(size2), size1, size2).map((h) => Buffer.from(h));
  }

  /** Root of a prefix the cache already covers (used to check the last checkpoint still holds). */
  async prefixRoot(size: number): Promise<Buffer> {
    const leaves = await this.leafHashes(size);
    return Buffer.from(subtreeRoot(leaves, 0, size));
  }
}

export interface StoredCheckpoint {
  size: number;
  root: string;
  note: string;
}

/**
 * Signs a checkpoint over the current log unless the newest one already covers it. Before
 * signing, the previous checkpoint's root is recomputed from the entries: a log that no longer
 * matches what was signed is refused, never papered over with a new signature.
 */
export async function makeCheckpoint(
  db: LedgerDb,
  log: MerkleLog,
  signer: NoteSigner,
  origin: string,
  onNew?: (cp: StoredCheckpoint) => Promise<void>,
): Promise<StoredCheckpoint | undefined> {
  const size = await log.size();
  const last = await latestCheckpoint(db);
  if (size === 0) return undefined;
  if (last !== undefined && last.size >= size) return last;
  if (last !== undefined && !(await log.matches(last.size, last.root))) {
    throw new Error(
      `checkpointing: the log no longer matches the checkpoint at size ${last.size}; run potluck ledger verify`,
    );
  }
  const root = await log.root(size);
  log.remember(size, root.toString("hex"));
  const note = signCheckpoint({ origin, size, root }, signer);
  const cp = { size, root: root.toString("hex"), note };
  const inserted = await db
    .insert(checkpoints)
    .values(cp)
    .onConflictDoNothing({ target: checkpoints.size })
    .returning({ size: checkpoints.size });
  // Two processes may race to sign the same size; the loser reads the winner's row (same root).
  if (inserted.length === 0) return (await checkpointAt(db, size)) ?? cp;
  await onNew?.(cp);
  return cp;
}

export async function latestCheckpoint(db: LedgerDb): Promise<StoredCheckpoint | undefined> {
  const [row] = await db
    .select({ size: checkpoints.size, root: checkpoints.root, note: checkpoints.note })
    .from(checkpoints)
    .orderBy(desc(checkpoints.size))
    .limit(1);
  return row;
}

export async function checkpointAt(db: LedgerDb, size: number): Promise<StoredCheckpoint | undefined> {
  const [row] = await db
    .select({ size: checkpoints.size, root: checkpoints.root, note: checkpoints.note })
    .from(checkpoints)
    .where(eq(checkpoints.size, size));
  return row;
}
