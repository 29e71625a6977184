import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejections } from "../src/db/schema.js";
import { ensureUsageConsumer, IngestLimits, publishUsage, startIngest } from "../src/ingest/jetstream.js";
import type { AppendOutcome } from "../src/ledger/append.js";
import type { IncomingEvent } from "../src/ledger/events.js";
import type { Ledger } from "../src/ledger/service.js";
import { ev, testLedger } from "./helpers/ledger.js";

// A settlement can reach the ledger before its hold: two ledgers take batches of one consumer in
// parallel, and a batch a killed ledger held is redelivered after later ones were applied. From
// JetStream such a settlement is deferred (delivered again later), not refused for good, which
// would leave the hold open and the payer's credits held.
describe("a settlement before its hold", () => {
  let t: Awaited<ReturnType<typeof testLedger>>;
  beforeAll(async () => {
    t = await testLedger();
    await t.ledger.append([ev({ kind: "adjust", eventId: "g-home", account: "home", delta: 1_000, reason: "grant" })]);
  });
  afterAll(async () => {
    await t?.close();
  });

  const settle = ev({ kind: "settle", eventId: "j1:settle", account: "home", holdEventId: "j1:hold", amount: 40 });
  const hold = ev({ kind: "hold", eventId: "j1:hold", account: "home", payee: "eve", amount: 100, jobId: "j1" });

  it("is deferred from JetStream, recorded nowhere, and applied once its hold is in", async () => {
    const [early] = await t.ledger.append([{ ...settle, holdMayFollow: true }]);
    expect(early).toMatchObject({ status: "deferred", refusal: { code: "unknown_hold" } });
    expect(await t.opened.db.select().from(rejections)).toEqual([]);
    await t.ledger.append([hold]);
    const [late] = await t.ledger.append([{ ...settle, holdMayFollow: true }]);
    expect(late).toMatchObject({ status: "applied" });
    expect(await t.ledger.balance("home")).toMatchObject({ balance: 960, held: 0 });
  });

  it("is refused and recorded as before once its hold may no longer follow (or over HTTP)", async () => {
    const orphan = ev({ kind: "void", eventId: "j2:void", account: "home", holdEventId: "j2:hold" });
    const [outcome] = await t.ledger.append([orphan]);
    expect(outcome).toMatchObject({ status: "rejected", refusal: { code: "unknown_hold" } });
    expect((await t.opened.db.select().from(rejections)).map((r) => r.eventId)).toEqual(["j2:void"]);
  });
});

describe("the ingest with a deferred event", () => {
  const prefix = `ho${randomBytes(4).toString("hex")}`;
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222" });
  });
  afterAll(async () => {
    await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
    await nc.close();
  });

  it("delivers it again after holdWaitMs, marked as one whose hold may follow, and acknowledges it once applied", async () => {
    const { stream } = await ensureUsageConsumer(nc, prefix, "ledger");
    const usage: UsageEvent = {
      eventId: "j1:settle",
      jobId: "j1",
      kind: "settle",
      account: "home",
      counterparty: "eve",
      servedBy: "evebox",
      model: "x",
      tokens: 1,
      amount: 1,
      ref: "j1:hold",
      at: new Date().toISOString(),
    };
    await publishUsage(jetstream(nc), prefix, usage);
    const seen: { at: number; ev: IncomingEvent }[] = [];
    const ledger = {
      append: async (events: IncomingEvent[]): Promise<AppendOutcome[]> => {
        seen.push(...events.map((e) => ({ at: Date.now(), ev: e })));
        const refusal = { code: "unknown_hold", status: 404, field: "holdEventId", message: "no hold" } as const;
        return events.map((e) =>
          seen.length === 1
            ? { eventId: e.eventId, status: "deferred", refusal }
            : { eventId: e.eventId, status: "applied", seq: 1, hash: "" },
        );
      },
    } as unknown as Ledger;
    const ingest = startIngest({
      nc,
      ledger,
      stream,
      durable: "ledger",
      batchMax: 10,
      log: () => undefined,
      onStall: () => undefined,
    });
    const deadline = Date.now() + IngestLimits.holdWaitMs * 4;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await ingest.stop();
    expect(seen.map((s) => [s.ev.eventId, s.ev.holdMayFollow])).toEqual([
      ["j1:settle", true],
      ["j1:settle", true],
    ]);
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(IngestLimits.holdWaitMs - 500);
    // Applied the second time: acknowledged, nothing left pending.
    await new Promise((r) => setTimeout(r, 500));
    const info = await (await jetstreamManager(nc)).consumers.info(stream, "ledger");
    expect([info.num_ack_pending, info.num_pending]).toEqual([0, 0]);
  }, 60_000);
});
