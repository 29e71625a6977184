import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { usageStreamConfig } from "@potluck/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadLedgerConfig, publishUsage, startLedgerService, type LedgerService } from "../src/index.js";
import { createTestDb } from "./helpers/db.js";

const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

/** The function main.ts, benches and `potluck up` start, run in-process on real PostgreSQL and NATS. */
describe("startLedgerService", () => {
  const prefix = `ls${randomBytes(4).toString("hex")}`;
  const token = randomBytes(24).toString("hex");
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let dataDir: string;
  let nc: NatsConnection;
  let service: LedgerService;

  beforeAll(async () => {
    db = await createTestDb();
    dataDir = mkdtempSync(join(tmpdir(), "ledger-service-"));
    nc = await connect({ servers: natsUrl });
    const config = loadLedgerConfig({ DATABASE_URL: db.url, POTLUCK_DATA_DIR: dataDir, POTLUCK_NATS_URL: natsUrl, POTLUCK_NATS_PREFIX: prefix, POTLUCK_LEDGER_WRITE_TOKEN: token }, []);
    service = await startLedgerService(config, { nats: nc });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
    await nc?.close();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("creates the usage stream from its one definition and meters what arrives on it", async () => {
    const info = await (await jetstreamManager(nc)).streams.info(subjectsFor(prefix).usageStream.name);
    expect(info.config).toMatchObject(usageStreamConfig(prefix));
    const ev: UsageEvent = { eventId: "svc-1", jobId: "j-1", kind: "earn", account: "ann", counterparty: "p", servedBy: "m", model: "x", tokens: 1, amount: 7, at: new Date().toISOString() };
    await publishUsage(jetstream(nc), prefix, ev);
    for (let i = 0; i < 200 && service.ledger.stats.applied === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await service.ledger.balance("ann")).toMatchObject({ balance: 7 });
  });

  it("serves the same ledger over HTTP, writes with the token, and answers errors in the one shape", async () => {
    const res = await service.app.request("/v1/balances/ann");
    expect(await res.json()).toMatchObject({ balance: 7 });
    const big = await service.app.request("/v1/events", { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "x".repeat(1024 * 1024) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: "body_too_large", field: "body" } });
    expect((await service.app.request("/nope")).status).toBe(404);
  });

  it("leaves an injected connection open when it closes", async () => {
    await service.close();
    expect(nc.isClosed()).toBe(false);
    service = { close: async () => undefined } as LedgerService;
  });
});
