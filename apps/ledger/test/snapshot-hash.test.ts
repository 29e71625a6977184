import { describe, expect, it } from "vitest";
import { openLedgerDb } from "../src/db/open.js";
import { parallelSnapshotRoot, SnapshotHashLimits, snapshotRootFromDb } from "../src/ledger/snapshot-hash.js";
import { snapshotRoot, snapshotRootParallel } from "../src/ledger/snapshot.js";
import { balanceLeafHash, encodeBalanceLeaf, leafHash } from "@potluck/ledger-proof";
import { createTestDb, rawSql } from "./helpers/db.js";

const rows = (n: number, name: (i: number) => string = (i) => `m${String(i).padStart(8, "0")}`) =>
  Array.from({ length: n }, (_, i) => ({ account: name(i), balance: (i % 3 === 0 ? -1 : 1) * i * 4_294_967 }));

describe("parallel snapshot hashing", () => {
  it("encodes balance leaves the same in a shared buffer as one by one", () => {
    for (const [account, balance] of [
      ["a", 0],
      ["ünïcødé", -(2 ** 40) - 7],
      ["m00000001", 2 ** 53 - 1],
    ] as const) {
      expect(balanceLeafHash(account, balance, 2 ** 33 + 5)).toEqual(
        leafHash(encodeBalanceLeaf(account, balance, 2 ** 33 + 5)),
      );
    }
  });

  it("gives the same root as the single-threaded tree, on chunk boundaries and off them", async () => {
    const c = SnapshotHashLimits.chunkLeaves;
    for (const n of [1, c - 1, c, c + 1, 3 * c + 17]) {
      const set = rows(n);
      expect((await parallelSnapshotRoot(set, 42, 2)).toString("hex"), `n=${n}`).toBe(snapshotRoot(set, 42));
    }
  }, 120_000);

  it("sorts unsorted and non-ASCII account names by bytes before hashing", async () => {
    const n = SnapshotHashLimits.inlineLeavesMax + 3;
    const set = rows(n, (i) => `${i % 5 === 0 ? "é" : "z"}${(n - i).toString(36)}`);
    const root = await snapshotRootParallel(set, 7);
    expect(root).toBe(snapshotRoot(set, 7));
    expect(root).not.toBe(snapshotRoot(set, 8));
  }, 120_000);

  it("hashes leaves PostgreSQL packed (several chunks, negative and non-ASCII) to the same root", async () => {
    const t = await createTestDb();
    const opened = await openLedgerDb({ databaseUrl: t.url, dataDir: "/nonexistent" });
    const raw = rawSql(t.url);
    try {
      const n = 2 * SnapshotHashLimits.chunkLeaves + 5;
      // A fixture the append path could never write (negative balances test the hashing's sign
      // handling): this session lifts the guard on balances and its limits, for this test only.
      await raw`select set_config('potluck.ledger_append', 'on', false)`;
      await raw`alter table balances drop constraint balances_within_limits`;
      await raw`insert into balances (account, balance, held, as_of_seq)
        select case when g % 7 = 0 then 'é' else 'z' end || (${n} - g)::text, (case when g % 3 = 0 then -1 else 1 end) * g::bigint * 4294967, 0, 0 from generate_series(0, ${n - 1}) g`;
      const rowsBack = await raw<{ account: string; balance: string }[]>`select account, balance::text from balances`;
      const js = snapshotRoot(
        rowsBack.map((r) => ({ account: r.account, balance: Number(r.balance) })),
        2 ** 33 + 1,
      );
      expect(await snapshotRootFromDb(opened.db, 2 ** 33 + 1)).toEqual({ root: js, accounts: n });
      // Exactly two full chunks: the page after the last one is empty and must end the stream cleanly.
      await raw`delete from balances where account in (select account from balances order by account collate "C" desc limit 5)`;
      const even = await raw<{ account: string; balance: string }[]>`select account, balance::text from balances`;
      expect(even.length).toBe(2 * SnapshotHashLimits.chunkLeaves);
      expect(await snapshotRootFromDb(opened.db, 9)).toEqual({
        root: snapshotRoot(
          even.map((r) => ({ account: r.account, balance: Number(r.balance) })),
          9,
        ),
        accounts: even.length,
      });
      await raw`delete from balances where account not like 'é%'`;
      const small = await raw<{ account: string; balance: string }[]>`select account, balance::text from balances`;
      expect(await snapshotRootFromDb(opened.db, 3)).toEqual({
        root: snapshotRoot(
          small.map((r) => ({ account: r.account, balance: Number(r.balance) })),
          3,
        ),
        accounts: small.length,
      });
    } finally {
      await raw.end();
      await opened.close();
      await t.drop();
    }
  }, 180_000);
});
