import fc from "fast-check";
import { LedgerAmounts, type LedgerEventRequest, type UsageEvent } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromUsage, type IncomingEvent } from "../src/ledger/events.js";
import { rawSql } from "./helpers/db.js";
import { ev, testLedger } from "./helpers/ledger.js";

/**
 * Random sequences of grants, payments, holds, settlements (by the payee, the payer or the
 * operator), disputes (voids), refunds, replays, bare earns and crashed batches (a transaction
 * that dies before its commit and is delivered again) never create or destroy a credit: after
 * every batch the sum of the accounts' balances equals the sum of the operator's grants, no
 * settlement exceeds its hold, and every earn is the pair of a spend or settlement of the same
 * amount. A batch arrives either as signed writes over HTTP or as the signed usage events sidecars
 * publish on JetStream (hold, settle, void, refund), the signer's owner being the actor. Each run
 * has its own accounts on one real PostgreSQL ledger, audited at the end.
 */
describe("credits are conserved", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  let sql: ReturnType<typeof rawSql>;
  let run = 0;
  beforeAll(async () => {
    t = await testLedger();
    sql = rawSql(t.url);
  });
  afterAll(async () => {
    await sql?.end();
    await t?.close();
  });

  it("through random signed jobs, disputes and crashes", { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 8 }), crash: fc.boolean(), wire: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        async (batches) => {
          run += 1;
          const who = (i: number) => `r${run}-${["a", "b", "c"][i % 3]}`;
          const sent: IncomingEvent[] = [];
          const holds: string[] = [];
          const paid: string[] = [];
          for (const [b, batch] of batches.entries()) {
            const events = batch.ops.flatMap((op, i) =>
              toEvent(op, `r${run}-${b}-${i}`, who, { sent, holds, paid }, batch.wire),
            );
            if (events.length === 0) continue;
            // A crash: everything is sent, then the process dies before the commit; the batch comes again.
            if (batch.crash)
              await expect(
                t.ledger.append(events, () => {
                  throw new Error("crash before commit");
                }),
              ).rejects.toThrow();
            await t.ledger.append(events);
            sent.push(...events);
            await expectConserved(sql, `r${run}-`);
          }
        },
      ),
      { numRuns: 40 },
    );
    expect(await t.ledger.audit()).toMatchObject({ ok: true });
  });
});

type Op =
  | { t: "grant"; who: number; amount: number }
  | { t: "earn"; who: number; amount: number }
  | { t: "spend"; who: number; to: number; amount: number }
  | { t: "hold"; who: number; to: number; amount: number }
  | { t: "settle"; pick: number; amount: number; by: number }
  | { t: "void"; pick: number; by: number }
  | { t: "refund"; pick: number; amount: number }
  | { t: "replay"; pick: number };

const amountArb = fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.constant(LedgerAmounts.eventMicroMax));
const whoArb = fc.integer({ min: 0, max: 2 });
/** -1: the operator (write token); 0-2: a machine of that account's owner. */
const byArb = fc.integer({ min: -1, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant("grant" as const),
    who: whoArb,
    amount: fc.oneof(
      amountArb,
      amountArb.map((a) => -a),
    ),
  }),
  fc.record({ t: fc.constant("earn" as const), who: whoArb, amount: amountArb }),
  fc.record({ t: fc.constant("spend" as const), who: whoArb, to: whoArb, amount: amountArb }),
  fc.record({ t: fc.constant("hold" as const), who: whoArb, to: whoArb, amount: amountArb }),
  fc.record({ t: fc.constant("settle" as const), pick: fc.nat(), amount: amountArb, by: byArb }),
  fc.record({ t: fc.constant("void" as const), pick: fc.nat(), by: byArb }),
  fc.record({ t: fc.constant("refund" as const), pick: fc.nat(), amount: amountArb }),
  fc.record({ t: fc.constant("replay" as const), pick: fc.nat() }),
);

/** The ledger event an op stands for (none when it refers to something that does not exist yet). */
function toEvent(
  op: Op,
  eventId: string,
  who: (i: number) => string,
  seen: { sent: IncomingEvent[]; holds: string[]; paid: string[] },
  wire = false,
): IncomingEvent[] {
  const pick = (list: string[], k: number) => list[k % list.length];
  const holdOwner = (holdId: string) => seen.sent.find((e) => e.eventId === holdId)?.account ?? "";
  const req = ((): LedgerEventRequest | undefined => {
    switch (op.t) {
      case "grant":
        return { kind: "adjust", eventId, account: who(op.who), delta: op.amount, reason: "grant" };
      case "earn":
        return { kind: "earn", eventId, account: who(op.who), amount: op.amount };
      case "spend":
        seen.paid.push(eventId);
        return { kind: "spend", eventId, account: who(op.who), payee: who(op.to), amount: op.amount };
      case "hold":
        seen.holds.push(eventId);
        return {
          kind: "hold",
          eventId,
          account: who(op.who),
          payee: who(op.to),
          amount: op.amount,
          jobId: `job-${eventId}`,
        };
      case "settle": {
        const hold = pick(seen.holds, op.pick);
        if (hold === undefined) return undefined;
        seen.paid.push(eventId);
        return { kind: "settle", eventId, account: holdOwner(hold), holdEventId: hold, amount: op.amount };
      }
      case "void": {
        const hold = pick(seen.holds, op.pick);
        return hold === undefined ? undefined : { kind: "void", eventId, account: holdOwner(hold), holdEventId: hold };
      }
      case "refund": {
        const target = pick(seen.paid, op.pick);
        return target === undefined
          ? undefined
          : {
              kind: "refund",
              eventId,
              account: seen.sent.find((e) => e.eventId === target)?.account ?? who(0),
              amount: op.amount,
              refundsEventId: target,
              reason: "dispute",
            };
      }
      case "replay":
        return undefined;
    }
  })();
  if (op.t === "replay") {
    const again = seen.sent[op.pick % Math.max(1, seen.sent.length)];
    return again === undefined ? [] : [again];
  }
  if (req === undefined) return [];
  const by = "by" in op ? op.by : -1;
  // A signed usage event from JetStream: its signer's owner is the actor (verify-usage.ts).
  const usage = wire ? asUsage(req, by === -1 ? who(0) : who(by)) : undefined;
  if (usage !== undefined) {
    const event = fromUsage(usage);
    return [by === -1 ? event : { ...event, actor: who(by) }];
  }
  const event = ev(req);
  return [by === -1 ? event : { ...event, actor: who(by) }];
}

/**
 * The same job event as a sidecar publishes it on JetStream (hold, settle, void, refund, spend,
 * earn); an adjust only comes from the operator, over HTTP.
 */
function asUsage(req: LedgerEventRequest, signerOwner: string): UsageEvent | undefined {
  const base = {
    eventId: req.eventId,
    jobId: `job-${req.eventId}`,
    account: req.account,
    counterparty: signerOwner,
    servedBy: "box",
    model: "m",
    tokens: 1,
    at: "2026-12-02T00:00:00.000Z",
  };
  switch (req.kind) {
    case "adjust":
      return undefined;
    case "earn":
      return { ...base, kind: "earn", amount: req.amount };
    case "spend":
    case "hold":
      return { ...base, kind: req.kind, counterparty: req.payee, amount: req.amount };
    case "settle":
      return { ...base, kind: "settle", amount: req.amount, ref: req.holdEventId };
    case "void":
      // A void moves nothing; the amount it carries is the hold's, for the record.
      return { ...base, kind: "void", amount: 1, ref: req.holdEventId };
    case "refund":
      return { ...base, kind: "refund", amount: req.amount, ref: req.refundsEventId };
  }
}

/** The invariants, read back from the database itself. */
async function expectConserved(sql: ReturnType<typeof rawSql>, prefix: string): Promise<void> {
  const like = `${prefix}%`;
  const [sums] = await sql`select
    (select coalesce(sum(balance), 0)::bigint from balances where account like ${like}) as balances,
    (select coalesce(sum(delta), 0)::bigint from entries where kind = 'adjust' and account like ${like}) as grants,
    (select count(*)::int from balances where account like ${like} and (held < 0 or held > balance)) as bad_held,
    (select count(*)::int from entries s join entries h on h.event_id = s.ref where s.kind = 'settle' and s.account like ${like} and -s.delta > h.held_delta) as over_hold,
    (select count(*)::int from entries e where e.kind = 'earn' and e.account like ${like}
       and not exists (select 1 from entries p where p.event_id = e.ref and p.kind in ('spend', 'settle') and -p.delta = e.delta)) as unpaired`;
  expect(sums).toEqual({ balances: sums?.grants, grants: sums?.grants, bad_held: 0, over_hold: 0, unpaired: 0 });
}
