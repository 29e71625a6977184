import { afterAll, beforeAll, expect, it } from "vitest";
import type { Ledger } from "../../src/ledger/service.js";
import { verifyProofBundle } from "@potluck/ledger-proof";
import { ev } from "./ledger.js";

/** The meter's behaviour, run once on PostgreSQL and once on PGlite. */
export function coreSuite(make: () => Promise<{ ledger: Ledger; close: () => Promise<void> }>): void {
  let ledger: Ledger;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ ledger, close } = await make());
  });
  afterAll(async () => close());

  it("applies grants, spend, hold → settle/void, adjust and refund, keeping balances", async () => {
    const out = await ledger.append([
      ev({ kind: "adjust", eventId: "c-e1", account: "ann", delta: 1000, reason: "grant" }),
      ev({ kind: "spend", eventId: "c-s1", account: "ann", payee: "peer", amount: 300 }),
      ev({ kind: "hold", eventId: "c-h1", account: "ann", payee: "peer", amount: 500, jobId: "j1" }),
      ev({ kind: "settle", eventId: "c-st1", account: "ann", holdEventId: "c-h1", amount: 200 }),
      ev({ kind: "hold", eventId: "c-h2", account: "ann", payee: "peer", amount: 100, jobId: "j2" }),
      ev({ kind: "void", eventId: "c-v2", account: "ann", holdEventId: "c-h2" }),
      ev({ kind: "refund", eventId: "c-r1", account: "ann", amount: 50, refundsEventId: "c-s1", reason: "slow" }),
      ev({ kind: "adjust", eventId: "c-a1", account: "ann", delta: -10, reason: "sampling" }),
    ]);
    expect(out.map((o) => o.status)).toEqual(Array(8).fill("applied"));
    expect(await ledger.balance("ann")).toMatchObject({ balance: 1000 - 300 - 200 + 50 - 10, held: 0 });
    // Every credit moved went to the payee, and the refund came back from it.
    expect(await ledger.balance("peer")).toMatchObject({ balance: 300 + 200 - 50, held: 0 });
  });

  it("answers a repeated event as already applied and records a conflicting one", async () => {
    const again = await ledger.append([
      ev({ kind: "adjust", eventId: "c-e1", account: "ann", delta: 1000, reason: "grant" }),
    ]);
    expect(again[0]).toMatchObject({ status: "duplicate", seq: 0 });
    const conflict = await ledger.append([
      ev({ kind: "adjust", eventId: "c-e1", account: "ann", delta: 999, reason: "grant" }),
    ]);
    expect(conflict[0]).toMatchObject({ status: "rejected", refusal: { code: "event_id_conflict", field: "eventId" } });
    const inBatch = await ledger.append([
      ev({ kind: "adjust", eventId: "c-e9", account: "cat", delta: 5, reason: "grant" }),
      ev({ kind: "adjust", eventId: "c-e9", account: "cat", delta: 5, reason: "grant" }),
      ev({ kind: "adjust", eventId: "c-e9", account: "cat", delta: 6, reason: "grant" }),
    ]);
    expect(inBatch.map((o) => o.status)).toEqual(["applied", "duplicate", "rejected"]);
    expect(await ledger.balance("cat")).toMatchObject({ balance: 5 });
  });

  it("refuses overdraw, unknown accounts and holds, double settlement and over-refunds", async () => {
    const out = await ledger.append([
      ev({ kind: "spend", eventId: "c-x1", account: "ann", payee: "peer", amount: 10_000 }),
      ev({ kind: "spend", eventId: "c-x2", account: "nobody", payee: "peer", amount: 1 }),
      ev({ kind: "settle", eventId: "c-x3", account: "ann", holdEventId: "c-h1", amount: 1 }),
      ev({ kind: "void", eventId: "c-x4", account: "ann", holdEventId: "no-such-hold" }),
      ev({ kind: "refund", eventId: "c-x5", account: "ann", amount: 251, refundsEventId: "c-s1", reason: "too much" }),
      ev({ kind: "hold", eventId: "c-x6", account: "cat", payee: "peer", amount: 6, jobId: "j" }),
    ]);
    const codes = out.map((o) => (o.status === "rejected" ? o.refusal.code : o.status));
    expect(codes).toEqual([
      "overdraw",
      "unknown_account",
      "hold_closed",
      "unknown_hold",
      "refund_exceeds_spend",
      "overdraw",
    ]);
  });

  it("signs checkpoints, proves consistency between them, and audits clean", async () => {
    const cp1 = await ledger.checkpoint();
    await ledger.append([ev({ kind: "adjust", eventId: "c-e10", account: "bob", delta: 7, reason: "grant" })]);
    const cp2 = await ledger.checkpoint();
    expect(cp1 && cp2 && cp2.size > cp1.size).toBe(true);
    const { verifyConsistency } = await import("@potluck/ledger-proof");
    const proof = await ledger.log.consistency(cp1?.size ?? 0, cp2?.size ?? 0);
    verifyConsistency(
      cp1?.size ?? 0,
      cp2?.size ?? 0,
      proof,
      Buffer.from(cp1?.root ?? "", "hex"),
      Buffer.from(cp2?.root ?? "", "hex"),
    );
    const snap = await ledger.snapshot();
    expect(snap.accounts).toBe(4);
    const verdict = verifyProofBundle(await ledger.proofBundle("bob"), ledger.publicKey);
    expect(verdict.balance).toBe(7);
    const report = await ledger.audit();
    expect(report).toMatchObject({ ok: true, snapshots: 1 });
  });
}
