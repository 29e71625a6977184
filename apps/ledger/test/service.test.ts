import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { generateIdentity, privateKeyFromPem } from "@potluck/peer";
import { usageStreamConfig } from "@potluck/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLedgerConfig, publishUsage, startLedgerService, type LedgerService } from "../src/index.js";
import { grantPath, hubSigningKeyPath, signGrant } from "../src/auth/admin.js";
import { ensureUsageConsumer, IngestLimits } from "../src/ingest/jetstream.js";
import { createTestDb, rawSql } from "./helpers/db.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

/** The function main.ts, benches and `potluck up` start, run in-process on real PostgreSQL and NATS. */
describe("startLedgerService", () => {
  const prefix = `ls${randomBytes(4).toString("hex")}`;
  const token = randomBytes(24).toString("hex");
  const hub = generateIdentity();
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let dataDir: string;
  let nc: NatsConnection;
  let service: LedgerService;

  beforeAll(async () => {
    db = await createTestDb();
    dataDir = mkdtempSync(join(tmpdir(), "ledger-service-"));
    // A ledger on the hub shares its data dir: the hub's signing key there is the admin's, who grants.
    mkdirSync(join(dataDir, "coordinator"), { mode: 0o700 });
    writeFileSync(hubSigningKeyPath(dataDir), hub.privateKeyPem, { mode: 0o600 });
    nc = await connect({ servers: natsUrl });
    const config = loadLedgerConfig(
      {
        DATABASE_URL: db.url,
        POTLUCK_DATA_DIR: dataDir,
        POTLUCK_NATS_URL: natsUrl,
        POTLUCK_NATS_PREFIX: prefix,
        POTLUCK_LEDGER_WRITE_TOKEN: token,
      },
      [],
    );
    service = await startLedgerService(config, { nats: nc });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
    await nc?.close();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A grant, signed as `potluck ledger grant` on the hub signs it. */
  const post = (body: unknown) => {
    const text = JSON.stringify(body);
    return service.app.request(grantPath, {
      method: "POST",
      headers: { ...signGrant(text, privateKeyFromPem(hub.privateKeyPem)), "content-type": "application/json" },
      body: text,
    });
  };
  const waitFor = async (what: string, done: () => Promise<boolean>) => {
    for (let i = 0; i < 200; i++) {
      if (await done()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const usage = (eventId: string, account: string, amount: number, kind: "spend" | "earn" = "spend"): UsageEvent => ({
    eventId,
    jobId: `j-${eventId}`,
    kind,
    account,
    counterparty: "p",
    servedBy: "m",
    model: "x",
    tokens: 1,
    amount,
    at: new Date().toISOString(),
  });

  it("creates the usage stream from its one definition and meters what arrives on it as a payment", async () => {
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(prefix).usageStream.name);
    expect(info.config).toMatchObject(usageStreamConfig(prefix));
    expect(
      (await post({ kind: "adjust", eventId: "grant-ann", account: "ann", delta: 100, reason: "welcome" })).status,
    ).toBe(201);
    await publishUsage(jetstream(nc), prefix, usage("svc-1", "ann", 7));
    await waitFor("the payment", async () => (await service.ledger.balance("p"))?.balance === 7);
    expect(await service.ledger.balance("ann")).toMatchObject({ balance: 93 });
  });

  it("serves the same ledger over HTTP, writes with the token, and answers errors in the one shape", async () => {
    const res = await service.app.request("/v1/balances/p");
    expect(await res.json()).toMatchObject({ balance: 7 });
    const big = await service.app.request("/v1/events", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "x".repeat(1024 * 1024),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: "body_too_large", field: "body" } });
    expect((await service.app.request("/nope")).status).toBe(404);
  });

  it("refuses a bare earn arriving on JetStream, recorded, and no credit minted", async () => {
    await publishUsage(jetstream(nc), prefix, usage("svc-mint", "eve", 1_000_000, "earn"));
    await waitFor("the refusal", async () => (service.ledger.stats.rejected.get("unpaired_earn") ?? 0) === 1);
    expect(await service.ledger.balance("eve")).toBeUndefined();
  });

  it("parks a poison event (and a malformed message) while the next batches land; redelivery is bounded", async () => {
    expect(
      (await post({ kind: "adjust", eventId: "grant-poison", account: "poison", delta: 100, reason: "to be poisoned" }))
        .status,
    ).toBe(201);
    // An event the database refuses to append whatever the rules say: a stand-in for any fault
    // that fails one event's transaction every time it is tried.
    const sql = rawSql(db.url);
    try {
      await sql.unsafe(`create function poison_entry() returns trigger language plpgsql as $$ begin if new.account = 'poison' then raise exception 'poisoned for the test'; end if; return new; end $$;
        create trigger poison_entry before insert on entries for each row execute function poison_entry()`);
    } finally {
      await sql.end();
    }
    const js = jetstream(nc);
    await js.publish(subjectsFor(prefix).usage("ann"), "{not json");
    await publishUsage(js, prefix, usage("svc-2", "ann", 1));
    await publishUsage(js, prefix, usage("svc-poison", "poison", 5));
    await publishUsage(js, prefix, usage("svc-3", "ann", 1));
    await waitFor("both good events", async () => (await service.ledger.balance("p"))?.balance === 9);
    await waitFor("two parked messages", async () => service.ledger.stats.parked === 2);
    const parked = (await (await service.app.request("/v1/parked")).json()) as {
      parked: { eventId: string; reason: string }[];
    };
    expect(parked.parked.map((p) => p.eventId).sort()).toEqual(["", "svc-poison"]);
    expect(parked.parked.find((p) => p.eventId === "svc-poison")?.reason).toMatch(/poisoned for the test/);
    expect(await (await service.app.request("/metrics")).text()).toMatch(/potluck_ledger_events_parked_total 2/);
    await publishUsage(js, prefix, usage("svc-4", "ann", 1));
    await waitFor("a later batch", async () => (await service.ledger.balance("p"))?.balance === 10);
    expect(await service.ledger.balance("poison")).toMatchObject({ balance: 100 });
    const consumer = await (
      await jetstreamManager(nc)
    ).consumers.info(subjectsFor(prefix).usageStream.name, loadLedgerConfig({}, []).POTLUCK_LEDGER_CONSUMER);
    expect(consumer.config.max_deliver).toBe(IngestLimits.deliverMax);
  });

  it("bounds the redelivery of a consumer made before the bound existed", async () => {
    const stream = subjectsFor(prefix).usageStream.name;
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(stream, { durable_name: "old-ledger", ack_policy: AckPolicy.Explicit });
    expect((await jsm.consumers.info(stream, "old-ledger")).config.max_deliver).toBe(-1);
    await ensureUsageConsumer(nc, prefix, "old-ledger");
    expect((await jsm.consumers.info(stream, "old-ledger")).config.max_deliver).toBe(IngestLimits.deliverMax);
    await jsm.consumers.delete(stream, "old-ledger");
  });

  it("leaves an injected connection open when it closes", async () => {
    await service.close();
    expect(nc.isClosed()).toBe(false);
    service = { close: async () => undefined } as LedgerService;
  });
});
