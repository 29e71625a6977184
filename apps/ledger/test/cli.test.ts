import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLedgerApp } from "../src/app.js";
import { loadOrCreateSigner } from "../src/keys.js";
import { Ledger } from "../src/ledger/service.js";
import { rawSql } from "./helpers/db.js";
import { ev, ORIGIN, testLedger } from "./helpers/ledger.js";
import { potluck } from "./helpers/potluck-cli.js";

/** The `potluck ledger` commands, run as a user would, against a real database and HTTP API. */
describe("potluck ledger CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "ledger-cli-"));
  let t: Awaited<ReturnType<typeof testLedger>>;
  let ledger: Ledger;
  let server: ServerType;
  let url = "";
  let env: Record<string, string>;

  beforeAll(async () => {
    t = await testLedger();
    ledger = new Ledger(t.opened.db, await loadOrCreateSigner(join(dir, "ledger.key"), ORIGIN), ORIGIN);
    await ledger.append([
      ev({ kind: "adjust", eventId: "k1", account: "ann", delta: 900, reason: "grant" }),
      ev({ kind: "adjust", eventId: "k2", account: "bob", delta: 40, reason: "grant" }),
      ev({ kind: "spend", eventId: "k3", account: "ann", payee: "peer", amount: 100 }),
    ]);
    await ledger.snapshot();
    const port = await new Promise<number>((resolve) => {
      server = serve(
        { fetch: buildLedgerApp({ startedAt: Date.now(), ledger }).fetch, port: 0, hostname: "127.0.0.1" },
        (info) => resolve(info.port),
      );
    });
    url = `http://127.0.0.1:${port}`;
    env = { DATABASE_URL: t.url, POTLUCK_DATA_DIR: dir };
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("exports a proof and verifies it offline; a doctored bundle fails", async () => {
    const file = join(dir, "ann.json");
    const out = await potluck(["ledger", "proof", "ann", "--out", file, "--url", url], env);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    const ok = await potluck(["ledger", "verify-proof", file, "--key", ledger.publicKey], {});
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/ann had 800 micro-credits/);
    const bundle = JSON.parse(readFileSync(file, "utf8")) as { balance: number };
    writeFileSync(join(dir, "forged.json"), JSON.stringify({ ...bundle, balance: 8000 }));
    const bad = await potluck(["ledger", "verify-proof", join(dir, "forged.json"), "--key", ledger.publicKey], {});
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/does NOT verify: balance in snapshot/);
    const unknown = await potluck(["ledger", "proof", "zed", "--url", url], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown account zed/);
  });

  it("lists the operator's grants and the parked messages", async () => {
    const grants = await potluck(["ledger", "grants", "--url", url], env);
    expect(grants.stderr).toBe("");
    expect(grants.stdout).toMatch(/entry 1 {2}bob {2}\+40 micro-credits/);
    expect(grants.stdout).toMatch(/entry 0 {2}ann {2}\+900 micro-credits/);
    const parked = await potluck(["ledger", "parked", "--url", url], env);
    expect(parked.stdout).toBe("no parked\n");
  });

  it("verifies as a role that may only SELECT: no migration, nothing written", async () => {
    const role = `ledger_ro_${randomBytes(4).toString("hex")}`;
    const sql = rawSql(t.url);
    try {
      await sql.unsafe(
        `create role ${role} login password 'ro-pass'; grant usage on schema public to ${role}; grant select on all tables in schema public to ${role}`,
      );
      const before =
        await sql`select (select count(*) from entries)::int as n, (select last_hash from head) as h, (select count(*) from drizzle.__drizzle_migrations)::int as m`;
      const roUrl = new URL(t.url);
      roUrl.username = role;
      roUrl.password = "ro-pass";
      const out = await potluck(["ledger", "verify"], { ...env, DATABASE_URL: roUrl.href });
      expect(out.stderr).toBe("");
      expect(out.stdout).toMatch(/ledger verifies: 5 entries/);
      expect(
        await sql`select (select count(*) from entries)::int as n, (select last_hash from head) as h, (select count(*) from drizzle.__drizzle_migrations)::int as m`,
      ).toEqual(before);
    } finally {
      await sql.unsafe(`drop owned by ${role}; drop role ${role}`).catch(() => undefined);
      await sql.end();
    }
  });

  it("verifies the database, and names the entry a superuser changed", async () => {
    const good = await potluck(["ledger", "verify"], env);
    expect(good.stderr).toBe("");
    expect(good.stdout).toMatch(/ledger verifies: 5 entries, 1 snapshots, 1 checkpoints/);
    const sql = rawSql(t.url);
    try {
      await sql`set session_replication_role = replica`;
      await sql`update entries set delta = delta + 1000 where seq = 1`;
      const bad = await potluck(["ledger", "verify"], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/first bad entry 1 \(event k2\)/);
      const [row] = await sql<{ hash: string }[]>`select hash from entries where seq = 2`;
      const from = await potluck(["ledger", "verify", "--from", row?.hash ?? ""], env);
      // Links after entry 2 are fine, but the recomputed snapshot and checkpoint still expose the change.
      expect(from.code).toBe(1);
      expect(from.stderr).toMatch(/snapshot entry 4|checkpoint/);
    } finally {
      await sql.end();
    }
  });
});
