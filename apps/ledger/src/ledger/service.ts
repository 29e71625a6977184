import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import type { ProofBundle } from "@potluck/protocol";
import type { Anchor } from "../anchors/anchor.js";
import { anchorReceipts, drainOutbox, enqueueAnchors } from "../anchors/outbox.js";
import type { LedgerDb } from "../db/open.js";
import { balances, entries, parked } from "../db/schema.js";
import { encodeEntry, parseVerifierKey, type NoteSigner } from "@potluck/ledger-proof";
import { APPEND_BATCH_MAX, appendEvents, type AppendOutcome } from "./append.js";
import { auditLedger, type AuditReport } from "./audit.js";
import type { IncomingEvent } from "./events.js";
import { expiredHolds } from "./expire.js";
import { checkpointAt, latestCheckpoint, makeCheckpoint, MerkleLog, type StoredCheckpoint } from "./log.js";
import { latestSnapshot, snapshotProof, snapshotTree, takeSnapshot, type SnapshotTree } from "./snapshot.js";

/** Read limits: pages are bounded so no request can pull the whole ledger at once. */
export const ReadLimits = { entriesPageMax: 500, balancesPageMax: 1000, listPageMax: 500 } as const;

export type ParkedRow = Omit<typeof parked.$inferInsert, "id" | "at">;

/** The one object every route and worker goes through; nothing else touches the tables. */
export class Ledger {
  readonly log: MerkleLog;
  /** Outcome counts since start, read by the metrics at scrape time. */
  readonly stats = { applied: 0, duplicates: 0, parked: 0, rejected: new Map<string, number>() };
  /** The newest snapshot's tree: every member's proof after a snapshot reuses one rebuild. */
  private snapTree: Promise<SnapshotTree> | undefined;

  constructor(
    readonly db: LedgerDb,
    readonly signer: NoteSigner,
    readonly origin: string,
    readonly anchors: readonly Anchor[] = [],
    private readonly clockMs: () => number = Date.now,
  ) {
    this.log = new MerkleLog(db);
  }

  get publicKey(): string {
    return this.signer.vkey;
  }

  /**
   * Appends events in order, in transactions of at most APPEND_BATCH_MAX; `onSent` as in appendEvents, for the last of
   * them.
   */
  async append(events: readonly IncomingEvent[], onSent?: () => void): Promise<AppendOutcome[]> {
    const out: AppendOutcome[] = [];
    for (let i = 0; i < events.length; i += APPEND_BATCH_MAX) {
      const last = i + APPEND_BATCH_MAX >= events.length;
      out.push(
        ...(await appendEvents(
          this.db,
          events.slice(i, i + APPEND_BATCH_MAX),
          this.clockMs(),
          last ? onSent : undefined,
        )),
      );
    }
    for (const o of out) {
      if (o.status === "applied") this.stats.applied += 1;
      else if (o.status === "duplicate") this.stats.duplicates += 1;
      else if (o.status === "rejected")
        this.stats.rejected.set(o.refusal.code, (this.stats.rejected.get(o.refusal.code) ?? 0) + 1);
    }
    return out;
  }

  /** Voids the holds nobody closed within HoldExpiry.openMsMax (expire.ts); returns how many. */
  async expireHolds(openMsMax?: number): Promise<number> {
    const voids = await expiredHolds(this.db, this.clockMs(), openMsMax);
    if (voids.length === 0) return 0;
    return (await this.append(voids)).filter((o) => o.status === "applied").length;
  }

  /** Keeps messages the ingest could not apply where the operator sees them; a message parked twice is kept once. */
  async park(rows: readonly ParkedRow[]): Promise<void> {
    if (rows.length === 0) return;
    const inserted = await this.db
      .insert(parked)
      .values([...rows])
      .onConflictDoNothing({ target: parked.streamSeq })
      .returning({ id: parked.id });
    this.stats.parked += inserted.length;
  }

  /** Parked messages, newest first, with an id below `beforeId`. */
  parkedPage(beforeId: number, limit: number) {
    return this.db
      .select()
      .from(parked)
      .where(lt(parked.id, beforeId))
      .orderBy(desc(parked.id))
      .limit(Math.min(limit, ReadLimits.listPageMax));
  }

  /** Admin grants (adjust entries), newest first, before `beforeSeq`: every change to the sum of all balances. */
  grantsPage(beforeSeq: number, limit: number) {
    return this.db
      .select()
      .from(entries)
      .where(and(eq(entries.kind, "adjust"), lt(entries.seq, beforeSeq)))
      .orderBy(desc(entries.seq))
      .limit(Math.min(limit, ReadLimits.listPageMax));
  }

  /** Answers when the database does (the ingest tells a poison event from an outage with it). */
  async ping(): Promise<void> {
    await this.db.execute(sql`select 1`);
  }

  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    return makeCheckpoint(this.db, this.log, this.signer, this.origin, (cp) =>
      enqueueAnchors(this.db, this.anchors, cp),
    );
  }

  /** Hands queued checkpoints to the anchors (file, witness); failures stay queued with a backoff. */
  publishAnchors(): Promise<{ published: number; failed: number }> {
    return drainOutbox(this.db, this.anchors, this.clockMs());
  }

  /** Takes a snapshot when the last one is older than `intervalMs` (or there is none); says whether it did. */
  async snapshotIfDue(intervalMs: number): Promise<boolean> {
    const last = await latestSnapshot(this.db);
    if (last !== undefined && this.clockMs() - last.record.createdAtMs < intervalMs) return false;
    await this.snapshot();
    return true;
  }

  /** A balance snapshot appended to the log, then a checkpoint that covers it. */
  async snapshot(): Promise<{
    seq: number;
    asOfSize: number;
    accounts: number;
    root: string;
    checkpoint?: StoredCheckpoint;
  }> {
    const snap = await takeSnapshot(this.db, this.clockMs());
    return { ...snap, checkpoint: await this.checkpoint() };
  }

  async balance(account: string) {
    const [row] = await this.db.select().from(balances).where(eq(balances.account, account));
    return row;
  }

  async balancesPage(after: string, limit: number) {
    return this.db
      .select()
      .from(balances)
      .where(gt(balances.account, after))
      .orderBy(asc(balances.account))
      .limit(Math.min(limit, ReadLimits.balancesPageMax));
  }

  /** An account's entries, newest first, before `beforeSeq`. */
  async entriesPage(account: string, beforeSeq: number, limit: number) {
    return this.db
      .select()
      .from(entries)
      .where(and(eq(entries.account, account), lt(entries.seq, beforeSeq)))
      .orderBy(desc(entries.seq))
      .limit(Math.min(limit, ReadLimits.entriesPageMax));
  }

  latestCheckpoint() {
    return latestCheckpoint(this.db);
  }

  checkpointAt(size: number) {
    return checkpointAt(this.db, size);
  }

  /**
   * The member's proof bundle against the newest snapshot and a checkpoint covering it (signed
   * now if none does yet). Undefined when there is no snapshot or the account is not in it.
   */
  async proofBundle(account: string): Promise<ProofBundle | undefined> {
    const snap = await latestSnapshot(this.db);
    if (snap === undefined) return undefined;
    let cp = await this.latestCheckpoint();
    if (cp === undefined || cp.size <= snap.seq) cp = await this.checkpoint();
    if (cp === undefined) return undefined;
    if (this.snapTree === undefined || (await this.snapTree.catch(() => undefined))?.asOfSize !== snap.asOfSize)
      this.snapTree = snapshotTree(this.db, snap.asOfSize);
    const inSnap = snapshotProof(await this.snapTree, account);
    if (inSnap === undefined) return undefined;
    if (inSnap.root !== snap.root)
      throw new Error(`proof: snapshot ${snap.seq} no longer matches the entries before it; run potluck ledger verify`);
    const inclusion = await this.log.inclusion(snap.seq, cp.size);
    return {
      version: 1,
      account,
      balance: inSnap.balance,
      snapshot: {
        seq: snap.seq,
        asOfSize: snap.asOfSize,
        root: snap.root,
        leafIndex: inSnap.leafIndex,
        size: inSnap.size,
        proof: inSnap.proof.map((h) => h.toString("hex")),
      },
      inclusion: {
        leafIndex: snap.seq,
        treeSize: cp.size,
        proof: inclusion.map((h) => h.toString("hex")),
        entry: encodeEntry(snap.record).toString("base64"),
      },
      checkpoint: cp.note,
      anchors: await anchorReceipts(this.db, cp.size),
    };
  }

  audit(fromHash?: string): Promise<AuditReport> {
    return auditLedger(this.db, parseVerifierKey(this.signer.vkey), fromHash === undefined ? {} : { fromHash });
  }
}
