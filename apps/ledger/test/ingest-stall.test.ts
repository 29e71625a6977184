import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureUsageConsumer, publishUsage, startIngest } from "../src/ingest/jetstream.js";
import type { Ledger } from "../src/ledger/service.js";

/**
 * postgres.js can leave a transaction's queries pending forever when the database drops the
 * connection (porsager/postgres#1186). The ingest loop must notice an append that never settles
 * rather than stop metering silently. Real NATS; the ledger is the faked boundary that hangs.
 */
describe("ingest stall watch", () => {
  const prefix = `st${randomBytes(4).toString("hex")}`;
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222" });
  });
  afterAll(async () => {
    await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
    await nc.close();
  });

  it("reports an append that has not settled within the limit, once, and leaves the batch unacknowledged", async () => {
    const { stream } = await ensureUsageConsumer(nc, prefix, "ledger");
    const ev: UsageEvent = {
      eventId: "e-1",
      jobId: "j-1",
      kind: "earn",
      account: "a",
      counterparty: "p",
      servedBy: "m",
      model: "x",
      tokens: 1,
      amount: 1,
      at: new Date().toISOString(),
    };
    await publishUsage(jetstream(nc), prefix, ev);
    let release: () => void = () => undefined;
    const appended: string[][] = [];
    const hanging = {
      append: (events: { eventId: string }[]) => {
        appended.push(events.map((e) => e.eventId));
        return new Promise((resolve) => (release = () => resolve([]))) as never;
      },
    } as unknown as Ledger;
    const stalls: number[] = [];
    let stalled: () => void = () => undefined;
    const seen = new Promise<void>((resolve) => (stalled = resolve));
    const ingest = startIngest({
      nc,
      ledger: hanging,
      stream,
      durable: "ledger",
      batchMax: 10,
      log: () => undefined,
      appendStallMs: 300,
      onStall: (ms) => {
        stalls.push(ms);
        stalled();
      },
    });
    await seen;
    expect(stalls).toEqual([300]);
    expect(appended).toEqual([["e-1"]]);
    // Nothing was acknowledged while the append hung: the consumer still owes the message.
    const info = await (await jetstreamManager(nc)).consumers.info(stream, "ledger");
    expect(info.num_ack_pending).toBe(1);
    release();
    await ingest.stop();
  });
});
