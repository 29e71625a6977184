import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { subjectsFor, type UsageEvent } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishUsage } from "../src/ingest/jetstream.js";
import { auditLedger } from "../src/ledger/audit.js";
import { openLedgerDb, type OpenedDb } from "../src/db/open.js";
import { parseSignerKey, parseVerifierKey } from "@potluck/ledger-proof";
import { readFileSync } from "node:fs";
import { createTestDb, rawSql } from "./helpers/db.js";
import { grantAll } from "./helpers/ledger.js";
import { killHard, spawnLedger, waitUntil } from "./helpers/proc.js";

/** What each paying account is granted before it spends: more than the test can spend. */
const GRANT = 1_000_000_000;

const NATS_URL = process.env.POTLUCK_NATS_URL ?? "nats://127.0.0.1:4222";

/**
 * kill -9 the ledger (a real child process) again and again while usage events stream in over
 * JetStream; in the end every published event is applied exactly once, balances equal the sum of
 * entries and the chain verifies. Then two ledgers consume at once and cannot fork the chain.
 */
describe("crash safety over JetStream", () => {
  const prefix = `t${randomBytes(5).toString("hex")}`;
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-crash-"));
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let nc: NatsConnection;
  let opened: OpenedDb | undefined;
  const env = () => ({
    DATABASE_URL: db.url,
    POTLUCK_DATA_DIR: dataDir,
    POTLUCK_NATS_URL: NATS_URL,
    POTLUCK_NATS_PREFIX: prefix,
    POTLUCK_LEDGER_PORT: "0",
    POTLUCK_BIND: "127.0.0.1",
    POTLUCK_LEDGER_ACK_WAIT: "2",
    POTLUCK_LEDGER_BATCH_MAX: "200",
    POTLUCK_LEDGER_CHECKPOINT_INTERVAL: "1",
  });

  beforeAll(async () => {
    db = await createTestDb();
    nc = await connect({ servers: NATS_URL });
  });
  afterAll(async () => {
    await jetstreamManager(nc)
      .then((jsm) => jsm.streams.delete(subjectsFor(prefix).usageStream.name))
      .catch(() => undefined);
    await nc.close();
    await opened?.close();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    "applies every event exactly once across 10 kill -9 restarts and two concurrent ledgers",
    { timeout: 240_000 },
    async () => {
      const js = jetstream(nc);
      const sql = rawSql(db.url);
      const published: UsageEvent[] = [];
      let publishing = true;
      const count = async () =>
        Number((await sql`select count(*)::int as n from entries where kind = 'spend'`)[0]?.n ?? 0);

      // The first ledger creates the stream and consumer; wait for it before publishing.
      const t0 = Date.now();
      let proc = spawnLedger(env());
      await waitUntil(
        async () =>
          (await jetstreamManager(nc)
            .then((m) => m.consumers.info(subjectsFor(prefix).usageStream.name, "ledger"))
            .catch(() => undefined)) !== undefined,
        "the ledger's consumer",
        60_000,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; ledger output:\n${proc.output().slice(-3000)}`);
      });
      await grantAll(
        db.url,
        Array.from({ length: 17 }, (_, k) => `acct${k}`),
        GRANT,
      );
      const publisher = (async () => {
        for (let i = 0; publishing && i < 100_000; i += 1) {
          const account = `acct${i % 17}`;
          const ev: UsageEvent = {
            eventId: `ev-${i}`,
            jobId: `job-${i}`,
            kind: "spend",
            account,
            counterparty: "peer",
            servedBy: "box",
            model: "tiny",
            tokens: i % 50,
            amount: 1 + (i % 97),
            at: new Date().toISOString(),
          };
          await publishUsage(js, prefix, ev);
          // Publish some events twice: the server's duplicate window and the ledger both dedupe.
          if (i % 50 === 0) await publishUsage(js, prefix, ev);
          published.push(ev);
          // A steady ~1,000 events/s: the backlog at each kill stays small on a loaded machine.
          if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50));
        }
      })();

      try {
        for (let round = 0; round < 10; round += 1) {
          const before = await count();
          await waitUntil(async () => (await count()) > before, `round ${round} to apply events`, 60_000, 50).catch(
            (error: unknown) => {
              throw new Error(`${(error as Error).message}; ledger output:\n${proc.output().slice(-3000)}`);
            },
          );
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
          await killHard(proc.child);
          proc = spawnLedger(env());
          if (process.env.LEDGER_TEST_TRACE === "1")
            console.log(
              `round ${round} at ${Date.now() - t0} ms, ${published.length} published, ${await count()} applied`,
            );
        }
        // Two ledgers on one chain: they share the durable consumer and the head lock.
        const second = spawnLedger(env());
        await new Promise((r) => setTimeout(r, 2_000));
        publishing = false;
        await publisher;
        if (process.env.LEDGER_TEST_TRACE === "1")
          console.log(`publishing stopped at ${Date.now() - t0} ms, ${published.length} published`);
        await waitUntil(
          async () => (await count()) >= published.length,
          `all ${published.length} events to be applied`,
          90_000,
          200,
          [
            { name: "first ledger", output: proc.output },
            { name: "second ledger", output: second.output },
          ],
        );
        await killHard(second.child);
      } finally {
        publishing = false;
        await publisher.catch(() => undefined);
        await killHard(proc.child);
      }

      const rows = await sql<
        { event_id: string; account: string; delta: string }[]
      >`select event_id, account, delta from entries where kind = 'spend'`;
      const ids = rows.map((r) => r.event_id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(published.map((e) => e.eventId)));
      const sums = new Map<string, number>();
      // Every usage spend is a payment: the payer's debit paired with the counterparty's earn.
      for (const e of published) {
        sums.set(e.account, (sums.get(e.account) ?? GRANT) - e.amount);
        sums.set(e.counterparty, (sums.get(e.counterparty) ?? 0) + e.amount);
      }
      const stored = await sql<{ account: string; balance: string }[]>`select account, balance from balances`;
      expect(new Map(stored.map((b) => [b.account, Number(b.balance)]))).toEqual(sums);
      await sql.end();

      opened = await openLedgerDb({ databaseUrl: db.url, dataDir });
      const signer = parseSignerKey(readFileSync(join(dataDir, "ledger.key"), "utf8"));
      const report = await auditLedger(opened.db, parseVerifierKey(signer.vkey));
      expect(report.problem).toBeUndefined();
      expect(report.ok).toBe(true);
      expect(report.entries).toBeGreaterThanOrEqual(published.length);
    },
  );
});
