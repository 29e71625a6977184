import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { generateIdentity, privateKeyFromPem } from "@potluck/peer";
import { subjectsFor } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantPath, hubSigningKeyPath, signGrant } from "../src/auth/admin.js";
import { isTransientDbError } from "@potluck/service";
import { loadLedgerConfig, publishUsage, startLedgerService, type LedgerService } from "../src/index.js";
import { createTestDb, rawSql } from "./helpers/db.js";

// A batch that fails because of the database's state (here: PostgreSQL's "the database system is
// starting up", SQLSTATE 57P03, raised by a trigger while a flag is set) is redelivered, never
// parked, even when `select 1` answers in between: the cluster suite's PostgreSQL crash once
// parked a good event that way.
const natsUrl = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = `lt${randomBytes(4).toString("hex")}`;
const hub = generateIdentity();
let db: Awaited<ReturnType<typeof createTestDb>>;
let dataDir: string;
let nc: NatsConnection;
let service: LedgerService;

beforeAll(async () => {
  db = await createTestDb();
  dataDir = mkdtempSync(join(tmpdir(), "ledger-transient-"));
  mkdirSync(join(dataDir, "coordinator"), { mode: 0o700 });
  writeFileSync(hubSigningKeyPath(dataDir), hub.privateKeyPem, { mode: 0o600 });
  nc = await connect({ servers: natsUrl });
  const env = {
    DATABASE_URL: db.url,
    POTLUCK_DATA_DIR: dataDir,
    POTLUCK_NATS_URL: natsUrl,
    POTLUCK_NATS_PREFIX: prefix,
    // Redelivery comes after the ack wait: short here, so the test need not wait 30 s.
    POTLUCK_LEDGER_ACK_WAIT: "2",
  };
  service = await startLedgerService(loadLedgerConfig(env, []), { nats: nc });
}, 60_000);
afterAll(async () => {
  await service?.close();
  await (await jetstreamManager(nc)).streams.delete(subjectsFor(prefix).usageStream.name).catch(() => undefined);
  await nc?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(what: string, done: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (await done()) return;
  throw new Error(`timed out waiting for ${what}`);
}

describe("ingest and a database that is restarting", () => {
  it("tells transient database failures from an event's own", () => {
    const wrapped = (cause: object) =>
      new Error("Failed query: insert …", { cause: Object.assign(new Error(), cause) });
    for (const code of ["57P03", "57P01", "08006", "53300", "40001", "40P01", "ECONNREFUSED", "CONNECTION_CLOSED"])
      expect(isTransientDbError(wrapped({ code })), code).toBe(true);
    for (const code of ["P0001", "23505", "22P02", "42P01", undefined])
      expect(isTransientDbError(wrapped({ code })), String(code)).toBe(false);
    expect(isTransientDbError("not an error")).toBe(false);
  });

  it("redelivers the event until the database is back, and parks nothing", async () => {
    const text = JSON.stringify({ kind: "adjust", eventId: "grant-flaky", account: "flaky", delta: 100, reason: "t" });
    const granted = await service.app.request(grantPath, {
      method: "POST",
      headers: { ...signGrant(text, privateKeyFromPem(hub.privateKeyPem)), "content-type": "application/json" },
      body: text,
    });
    expect(granted.status).toBe(201);
    const sql = rawSql(db.url);
    try {
      // Every try counts (a sequence is not rolled back); while the flag row exists, every insert
      // for "flaky" fails as a starting server answers.
      await sql.unsafe(`create sequence flaky_tries; create table flaky_flag (on_ boolean);
        insert into flaky_flag values (true);
        create function flaky_entry() returns trigger language plpgsql as $$ begin
          if new.account = 'flaky' and new.kind = 'spend' then
            perform nextval('flaky_tries');
            if exists (select 1 from flaky_flag) then
              raise exception 'the database system is starting up' using errcode = '57P03';
            end if;
          end if;
          return new; end $$;
        create trigger flaky_entry before insert on entries for each row execute function flaky_entry()`);
      await publishUsage(jetstream(nc), prefix, {
        eventId: "svc-flaky",
        jobId: "j-svc-flaky",
        kind: "spend",
        account: "flaky",
        counterparty: "p",
        servedBy: "m",
        model: "x",
        tokens: 1,
        amount: 5,
        at: new Date().toISOString(),
      });
      // The batch and the event alone, then at least one redelivery: tried three times or more.
      await waitFor("three tries", async () => {
        const [row] = await sql<{ n: string }[]>`select last_value as n from flaky_tries`;
        return Number(row?.n) >= 3;
      });
      expect(service.ledger.stats.parked).toBe(0);
      await sql`delete from flaky_flag`;
      await waitFor("the spend applied", async () => (await service.ledger.balance("flaky"))?.balance === 95);
      expect(service.ledger.stats.parked).toBe(0);
      expect((await (await service.app.request("/v1/parked")).json()) as unknown).toMatchObject({ parked: [] });
    } finally {
      await sql.end();
    }
  }, 60_000);
});
