import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyProofBundle } from "@potluck/ledger-proof";
import type { Ledger } from "../src/ledger/service.js";
import { rawSql } from "./helpers/db.js";
import { ev, testLedger } from "./helpers/ledger.js";
import { coreSuite } from "./helpers/core-suite.js";

describe("ledger core on PostgreSQL", () => {
  coreSuite(async () => {
    const t = await testLedger();
    return { ledger: t.ledger, close: t.close };
  });
});

describe("append-only in the database", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let ledger: Ledger;
  beforeAll(async () => {
    t = await testLedger();
    ledger = t.ledger;
    await ledger.append([
      ev({ kind: "adjust", eventId: "e1", account: "ann", delta: 100, reason: "grant" }),
      ev({ kind: "adjust", eventId: "e2", account: "bob", delta: 50, reason: "grant" }),
    ]);
  });
  afterAll(async () => t.close());

  it("refuses UPDATE, DELETE, TRUNCATE, gaps and forks", async () => {
    const sql = rawSql(t.url);
    try {
      await expect(sql`update entries set delta = 1 where seq = 0`).rejects.toThrow(/append-only/);
      await expect(sql`delete from entries where seq = 1`).rejects.toThrow(/append-only/);
      await expect(sql`truncate entries`).rejects.toThrow(/append-only/);
      const [last] = await sql<{ hash: string }[]>`select hash from entries where seq = 1`;
      const row = {
        event_id: "x",
        kind: "earn",
        account: "ann",
        delta: 1,
        held_delta: 0,
        ref: "",
        meta: "{}",
        payload_hash: "0".repeat(64),
        created_at_ms: 1,
        hash: "a".repeat(64),
      };
      await expect(sql`insert into entries ${sql({ ...row, seq: 5, prev_hash: last?.hash ?? "" })}`).rejects.toThrow(
        /does not extend the chain/,
      );
      await expect(sql`insert into entries ${sql({ ...row, seq: 2, prev_hash: "b".repeat(64) })}`).rejects.toThrow(
        /does not extend the chain/,
      );
      // Within one multi-row statement (how batches are written), a bad link or a gap between the
      // statement's own rows is refused too, and the message names the offending entry.
      const next = { ...row, seq: 2, prev_hash: last?.hash ?? "", hash: "c".repeat(64) };
      await expect(
        sql`insert into entries ${sql([next, { ...row, event_id: "y", seq: 3, prev_hash: "d".repeat(64), hash: "e".repeat(64) }])}`,
      ).rejects.toThrow(/entry 3 does not extend the chain/);
      await expect(
        sql`insert into entries ${sql([next, { ...row, event_id: "y", seq: 4, prev_hash: next.hash, hash: "e".repeat(64) }])}`,
      ).rejects.toThrow(/entry 4 does not extend the chain/);
      // A second entry claiming the same predecessor (a fork) is refused by the unique previous hash.
      const [first] = await sql<{ hash: string }[]>`select hash from entries where seq = 0`;
      await expect(sql`insert into entries ${sql({ ...row, seq: 1, prev_hash: first?.hash ?? "" })}`).rejects.toThrow(
        /duplicate key|unique/,
      );
    } finally {
      await sql.end();
    }
    expect((await ledger.audit()).ok).toBe(true);
  });

  it("exports a proof bundle that verifies offline with only the public key", async () => {
    await ledger.snapshot();
    const bundle = await ledger.proofBundle("ann");
    const verdict = verifyProofBundle(JSON.parse(JSON.stringify(bundle)), ledger.publicKey);
    expect(verdict).toMatchObject({ account: "ann", balance: 100, asOfSize: 2, checkpointSize: 3 });
    expect(() => verifyProofBundle({ ...bundle, balance: 101 }, ledger.publicKey)).toThrow(/balance in snapshot/);
    expect(() => verifyProofBundle({ ...bundle, account: "bob" }, ledger.publicKey)).toThrow(/balance in snapshot/);
  });
});

describe("reads under the head lock", () => {
  it("judges a batch by what was committed when it got the lock, not when it asked for it", async () => {
    const t = await testLedger();
    const sql = rawSql(t.url);
    const watcher = rawSql(t.url);
    try {
      await t.ledger.append([ev({ kind: "adjust", eventId: "e1", account: "ann", delta: 100, reason: "grant" })]);
      let appending: Promise<unknown> | undefined;
      await sql.begin(async (tx) => {
        await tx`select size from head where id = 1 for update`;
        appending = t.ledger.append([ev({ kind: "spend", eventId: "s1", account: "ann", payee: "peer", amount: 60 })]);
        // The append is queued behind this lock; whatever it reads must come after what this
        // lock holder writes (an operator's correction here, standing in for another writer).
        const deadline = Date.now() + 10_000;
        while (
          (
            await watcher`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`
          )[0]?.n !== 1
        ) {
          if (Date.now() > deadline) throw new Error("the append never waited for the head lock");
          await new Promise((r) => setTimeout(r, 10));
        }
        await tx`select set_config('potluck.ledger_append', 'on', true)`;
        await tx`update balances set balance = 50 where account = 'ann'`;
      });
      await expect(appending).resolves.toEqual([
        expect.objectContaining({
          eventId: "s1",
          status: "rejected",
          refusal: expect.objectContaining({ code: "overdraw" }),
        }),
      ]);
    } finally {
      await sql.end();
      await watcher.end();
      await t.close();
    }
  });
});

describe("two ledgers appending at once", () => {
  it("cannot fork the chain: one head row serializes them", async () => {
    const t = await testLedger();
    const { openLedgerDb } = await import("../src/db/open.js");
    const { Ledger: LedgerClass } = await import("../src/ledger/service.js");
    const other = await openLedgerDb({ databaseUrl: t.url, dataDir: "/nonexistent" });
    try {
      const second = new LedgerClass(other.db, t.ledger.signer, t.ledger.origin);
      await t.ledger.append([
        ev({ kind: "adjust", eventId: "seed", account: "ann", delta: 1_000_000, reason: "grant" }),
      ]);
      let applied = 1;
      const writer = (l: Ledger, tag: string) =>
        (async () => {
          for (let i = 0; i < 40; i += 1) {
            const out = await l.append(
              Array.from({ length: 25 }, (_, j) =>
                j % 2
                  ? ev({
                      kind: "spend",
                      eventId: `${tag}-${i}-${j}`,
                      account: j % 3 ? "ann" : "bob",
                      payee: "cat",
                      amount: 1 + j,
                    })
                  : ev({
                      kind: "adjust",
                      eventId: `${tag}-${i}-${j}`,
                      account: j % 3 ? "ann" : "bob",
                      delta: 1 + j,
                      reason: "grant",
                    }),
              ),
            );
            // A spend is an entry pair: the debit and the payee's earn.
            applied += out
              .filter((o) => o.status === "applied")
              .reduce((n, o) => n + (Number(o.eventId.split("-")[2]) % 2 ? 2 : 1), 0);
          }
        })();
      await Promise.all([writer(t.ledger, "a"), writer(second, "b"), writer(t.ledger, "c"), writer(second, "d")]);
      expect(applied).toBeGreaterThan(3000);
      const report = await t.ledger.audit();
      expect(report).toMatchObject({ ok: true, entries: applied });
    } finally {
      await other.close();
      await t.close();
    }
  });
});
