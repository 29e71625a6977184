import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { UsageEvent } from "@potluck/protocol";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedgerDb } from "../src/db/open.js";
import { publishUsage } from "../src/ingest/jetstream.js";
import { grantAll } from "./helpers/ledger.js";
import { auditLedger } from "../src/ledger/audit.js";
import { parseSignerKey, parseVerifierKey } from "@potluck/ledger-proof";
import { superviseLedger, waitUntil } from "./helpers/proc.js";
import { PrivateNats, PrivatePostgres } from "./helpers/servers.js";

/**
 * PostgreSQL and NATS are restarted under a running ledger while events stream in. These are
 * private servers started by the test, so the shared ones are never disturbed.
 */
/** What each paying account is granted before it spends: more than the test can spend. */
const GRANT = 1_000_000_000;

describe("PostgreSQL and NATS restart mid-stream", () => {
  const nats = new PrivateNats();
  const pg = new PrivatePostgres();
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-restart-"));
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    nats.start();
    await pg.init();
    await pg.start();
  });
  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await nats.stop();
    await pg.stop("immediate");
    rmSync(nats.dir, { recursive: true, force: true });
    rmSync(pg.dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    "applies every event exactly once through a database restart and a NATS restart",
    { timeout: 200_000 },
    async () => {
      await waitUntil(
        async () => (nc = await connect({ servers: nats.url }).catch(() => undefined)) !== undefined,
        "the private NATS",
        30_000,
        200,
      );
      const conn = nc as NatsConnection;
      // Supervised: postgres.js 3.4.9 can kill the process when PostgreSQL goes away mid-transaction
      // (porsager/postgres#1208) or leave the append hanging (#1186, then the ledger exits itself);
      // what must hold is that every event is still applied exactly once.
      const proc = superviseLedger({
        DATABASE_URL: pg.url,
        POTLUCK_DATA_DIR: dataDir,
        POTLUCK_NATS_URL: nats.url,
        POTLUCK_NATS_PREFIX: "rs",
        POTLUCK_LEDGER_PORT: "0",
        POTLUCK_BIND: "127.0.0.1",
        POTLUCK_LEDGER_ACK_WAIT: "2",
        POTLUCK_LEDGER_BATCH_MAX: "100",
      });
      const logs = [{ name: "ledger", output: proc.output }];
      const sql = postgres(pg.url, { max: 1, onnotice: () => undefined });
      const count = async () =>
        Number(
          (await sql`select count(*)::int as n from entries where kind = 'spend'`.catch(() => [{ n: -1 }]))[0]?.n ?? -1,
        );
      const published: UsageEvent[] = [];
      try {
        await waitUntil(async () => (await count()) >= 0, "the ledger's schema", 60_000, 200, logs);
        await grantAll(
          pg.url,
          Array.from({ length: 7 }, (_, k) => `a${k}`),
          GRANT,
        );
        let publishing = true;
        const publisher = (async () => {
          const js = jetstream(conn);
          for (let i = 0; publishing && i < 50_000; i += 1) {
            const ev: UsageEvent = {
              eventId: `r-${i}`,
              jobId: `j-${i}`,
              kind: "spend",
              account: `a${i % 7}`,
              counterparty: "p",
              servedBy: "m",
              model: "x",
              tokens: 1,
              amount: 1 + (i % 13),
              at: new Date().toISOString(),
            };
            // A sidecar retries a publish until the server takes it; the msg id makes retries harmless.
            for (let attempt = 0; ; attempt += 1) {
              try {
                await publishUsage(js, "rs", ev);
                break;
              } catch (error) {
                if (attempt > 600) throw error;
                await new Promise((r) => setTimeout(r, 100));
              }
            }
            published.push(ev);
            if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
          }
        })();
        await waitUntil(async () => (await count()) > 200, "events before the database restart", 60_000, 100, logs);
        await pg.stop("fast");
        await new Promise((r) => setTimeout(r, 1_000));
        await pg.start();
        await sql.end();
        const sql2 = postgres(pg.url, { max: 1, onnotice: () => undefined });
        const count2 = async () =>
          Number(
            (await sql2`select count(*)::int as n from entries where kind = 'spend'`.catch(() => [{ n: -1 }]))[0]?.n ??
              -1,
          );
        const afterPg = await count2();
        await waitUntil(
          async () => (await count2()) > afterPg + 200,
          "events after the database restart",
          60_000,
          100,
          logs,
        );
        await nats.stop();
        await new Promise((r) => setTimeout(r, 1_000));
        nats.start();
        const afterNats = await count2();
        await waitUntil(
          async () => (await count2()) > afterNats + 200,
          "events after the NATS restart",
          90_000,
          100,
          logs,
        );
        publishing = false;
        await publisher;
        await waitUntil(
          async () => (await count2()) >= published.length,
          `all ${published.length} events`,
          90_000,
          200,
          logs,
        );
        const rows = await sql2<{ event_id: string }[]>`select event_id from entries where kind = 'spend'`;
        expect(rows.length).toBe(published.length);
        expect(new Set(rows.map((r) => r.event_id))).toEqual(new Set(published.map((e) => e.eventId)));
        const sums = new Map<string, number>();
        // Every usage spend is a payment: the payer's debit paired with the counterparty's earn.
        for (const e of published) {
          sums.set(e.account, (sums.get(e.account) ?? GRANT) - e.amount);
          sums.set(e.counterparty, (sums.get(e.counterparty) ?? 0) + e.amount);
        }
        const stored = await sql2<{ account: string; balance: string }[]>`select account, balance from balances`;
        expect(new Map(stored.map((b) => [b.account, Number(b.balance)]))).toEqual(sums);
        await sql2.end();
        if (proc.restarts() > 0)
          console.log(`restart test: the ledger was restarted ${proc.restarts()} time(s) by its supervisor`);
      } finally {
        await proc.stop();
        await sql.end().catch(() => undefined);
      }
      const opened = await openLedgerDb({ databaseUrl: pg.url, dataDir });
      try {
        const key = parseVerifierKey(parseSignerKey(readFileSync(join(dataDir, "ledger.key"), "utf8")).vkey);
        expect(await auditLedger(opened.db, key)).toMatchObject({ ok: true });
      } finally {
        await opened.close();
      }
    },
  );
});
