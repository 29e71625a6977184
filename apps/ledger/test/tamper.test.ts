import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ledger } from "../src/ledger/service.js";
import { rawSql } from "./helpers/db.js";
import { ev, testLedger } from "./helpers/ledger.js";

/**
 * A superuser edits the entries table directly (triggers off in that session, as an operator
 * could); `verify` must name the exact entry. Each case restores the row afterwards.
 */
describe("tampering is found and named", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let ledger: Ledger;
  let sql: ReturnType<typeof rawSql>;
  const total = 30;

  beforeAll(async () => {
    t = await testLedger();
    ledger = t.ledger;
    const events = [];
    for (let i = 0; i < total; i += 1) {
      const account = ["ann", "bob", "cat"][i % 3] ?? "ann";
      const payee = ["bob", "cat", "ann"][i % 3] ?? "bob";
      events.push(
        i < 3 || i % 2 === 1
          ? ev({ kind: "adjust", eventId: `t${i}`, account, delta: i < 3 ? 10_000 : 11 * i, reason: "grant" })
          : i % 5 === 0
            ? ev({ kind: "hold", eventId: `t${i}`, account, payee, amount: 7, jobId: `j${i}` })
            : ev({ kind: "spend", eventId: `t${i}`, account, payee, amount: 11 * i, jobId: `j${i}` }),
      );
    }
    await ledger.append(events.slice(0, 20));
    await ledger.snapshot();
    await ledger.append(events.slice(20));
    await ledger.checkpoint();
    expect((await ledger.audit()).ok).toBe(true);
    sql = rawSql(t.url);
    await sql`set session_replication_role = replica`;
  });
  afterAll(async () => {
    await sql.end();
    await t.close();
  });

  const cases: [string, (seq: number) => Promise<unknown>, RegExp][] = [
    ["event_id", (s) => sql`update entries set event_id = 'forged' where seq = ${s}`, /altered/],
    [
      "kind",
      (s) => sql`update entries set kind = case when kind = 'earn' then 'adjust' else 'earn' end where seq = ${s}`,
      /altered/,
    ],
    ["account", (s) => sql`update entries set account = 'mallory' where seq = ${s}`, /altered/],
    ["delta", (s) => sql`update entries set delta = delta + 1 where seq = ${s}`, /altered/],
    ["held_delta", (s) => sql`update entries set held_delta = held_delta + 1 where seq = ${s}`, /altered/],
    ["ref", (s) => sql`update entries set ref = 'x' where seq = ${s}`, /altered/],
    ["meta", (s) => sql`update entries set meta = '{"jobId":"other"}' where seq = ${s}`, /altered/],
    ["payload_hash", (s) => sql`update entries set payload_hash = ${"f".repeat(64)} where seq = ${s}`, /altered/],
    ["created_at_ms", (s) => sql`update entries set created_at_ms = created_at_ms + 1 where seq = ${s}`, /altered/],
    ["prev_hash", (s) => sql`update entries set prev_hash = ${"e".repeat(64)} where seq = ${s}`, /does not link/],
    ["hash", (s) => sql`update entries set hash = ${"d".repeat(64)} where seq = ${s}`, /altered/],
    ["seq", (s) => sql`update entries set seq = seq + 1000 where seq = ${s}`, /missing/],
  ];

  it.each(cases)("changing %s of one entry names that entry", async (_field, tamper, pattern) => {
    for (const seq of [1, 17, total]) {
      const [original] = await sql`select * from entries where seq = ${seq}`;
      await tamper(seq);
      const report = await ledger.audit();
      expect(report.ok).toBe(false);
      expect(report.problem?.seq).toBe(seq);
      expect(report.problem?.what).toMatch(pattern);
      await sql`delete from entries where seq = ${seq} or seq = ${seq + 1000}`;
      await sql`insert into entries ${sql(original as Record<string, unknown>)}`;
      expect((await ledger.audit()).ok).toBe(true);
    }
  });

  it("finds a deleted row and names the missing entry", async () => {
    const [original] = await sql`select * from entries where seq = 12`;
    await sql`delete from entries where seq = 12`;
    const report = await ledger.audit();
    expect(report.problem).toMatchObject({ seq: 12 });
    expect(report.problem?.what).toMatch(/missing/);
    await sql`insert into entries ${sql(original as Record<string, unknown>)}`;
    expect((await ledger.audit()).ok).toBe(true);
  });

  it("finds two rows swapped and names the first", async () => {
    await sql`update entries set seq = 100000 where seq = 8`;
    await sql`update entries set seq = 8 where seq = 9`;
    await sql`update entries set seq = 9 where seq = 100000`;
    const report = await ledger.audit();
    expect(report.problem?.seq).toBe(8);
    await sql`update entries set seq = 100000 where seq = 8`;
    await sql`update entries set seq = 8 where seq = 9`;
    await sql`update entries set seq = 9 where seq = 100000`;
    expect((await ledger.audit()).ok).toBe(true);
  });

  it("finds a rewrite that recomputed every later hash, through the signed checkpoint", async () => {
    const { entryHash } = await import("@potluck/ledger-proof");
    const { recordOf } = await import("../src/ledger/rows.js");
    const rows = await sql`select * from entries order by seq`;
    let prev = "0".repeat(64);
    const originals = rows.map((r) => ({ ...r }));
    // Rewrite entry 4's amount and re-chain everything after it, as a careful forger would.
    for (const r of rows) {
      const row = {
        seq: Number(r.seq),
        eventId: r.event_id,
        kind: r.kind,
        account: r.account,
        delta: Number(r.delta) + (Number(r.seq) === 4 ? 1 : 0),
        heldDelta: Number(r.held_delta),
        ref: r.ref,
        meta: r.meta,
        payloadHash: r.payload_hash,
        createdAtMs: Number(r.created_at_ms),
        prevHash: prev,
        hash: "",
      };
      const hash = entryHash(recordOf(row));
      await sql`update entries set delta = ${row.delta}, prev_hash = ${"e" + String(row.seq).padStart(63, "0")}, hash = ${"f" + String(row.seq).padStart(63, "0")} where seq = ${row.seq}`;
      await sql`update entries set prev_hash = ${prev}, hash = ${hash} where seq = ${row.seq}`;
      prev = hash;
    }
    await sql`update head set last_hash = ${prev}`;
    const report = await ledger.audit();
    expect(report.ok).toBe(false);
    expect(report.problem?.what).toMatch(/snapshot entry|checkpoint/);
    for (const r of originals)
      await sql`update entries set delta = ${r.delta}, prev_hash = ${"c" + String(r.seq).padStart(63, "0")}, hash = ${"d" + String(r.seq).padStart(63, "0")} where seq = ${r.seq}`;
    for (const r of originals)
      await sql`update entries set prev_hash = ${r.prev_hash}, hash = ${r.hash} where seq = ${r.seq}`;
    await sql`update head set last_hash = ${originals[originals.length - 1]?.hash}`;
    expect((await ledger.audit()).ok).toBe(true);
  });
});
