import { randomBytes, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { generateIdentity, privateKeyFromPem, SignedAudience, signRequest } from "@potluck/peer";
import { LedgerAmounts, Roster } from "@potluck/protocol";
import { verifyProofBundle } from "@potluck/ledger-proof";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signGrant } from "../src/auth/admin.js";
import { loadLedgerConfig, startLedgerService, type LedgerService } from "../src/index.js";
import { createTestDb, rawSql } from "./helpers/db.js";
import { hubKey, signedRoster } from "./helpers/signed-roster.js";

/**
 * Attacks 1 and 13 of issue 18, performed for real: machines on the roster sign the requests an
 * attacker would send, over HTTP, to the service main.ts starts, on real PostgreSQL; an operator's
 * SQL session writes to the derived tables. Each refusal is a 4xx naming why, and the ledger's
 * tables are compared before and after.
 */
describe("an owner's machine cannot mint credits, and nobody can doctor balances", () => {
  const token = randomBytes(24).toString("hex");
  const annBox = generateIdentity();
  const eveBox = generateIdentity();
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-attack-"));
  let db: Awaited<ReturnType<typeof createTestDb>>;
  let service: LedgerService;
  let roster: ServerType;
  let http: ServerType;
  let url = "";
  let sql: ReturnType<typeof rawSql>;
  const errors: { obj: object; msg?: string }[] = [];

  beforeAll(async () => {
    db = await createTestDb();
    const body = Roster.parse({
      version: 1,
      machines: [
        {
          id: "m1",
          name: "annbox",
          owner: "ann",
          meshIp: "100.64.0.2",
          wireguardPublicKey: annBox.publicKey,
          identityPublicKey: annBox.publicKey,
          endpoints: [],
          state: "online",
          lastHeartbeatAt: null,
          staleKey: false,
        },
        {
          id: "m2",
          name: "evebox",
          owner: "eve",
          meshIp: "100.64.0.3",
          wireguardPublicKey: eveBox.publicKey,
          identityPublicKey: eveBox.publicKey,
          endpoints: [],
          state: "online",
          lastHeartbeatAt: null,
          staleKey: false,
        },
      ],
    });
    const hub = hubKey();
    const rosterUrl = await listen(signedRoster(body, hub), (s) => (roster = s));
    const config = loadLedgerConfig(
      {
        DATABASE_URL: db.url,
        POTLUCK_DATA_DIR: dataDir,
        POTLUCK_LEDGER_INGEST: "0",
        POTLUCK_LEDGER_WRITE_TOKEN: token,
        POTLUCK_COORDINATOR_URL: rosterUrl,
        POTLUCK_COORDINATOR_KEY: hub.publicKey,
      },
      [],
    );
    service = await startLedgerService(config, {
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (obj: object | string, msg?: string) =>
          void errors.push(typeof obj === "string" ? { obj: {}, msg: obj } : { obj, msg }),
      },
    });
    url = await listen(service.app.fetch, (s) => (http = s));
    sql = rawSql(db.url);
    // The only credits in this ledger: the admin's grant to ann, signed with the hub's key.
    expect(
      (
        await post(
          { kind: "adjust", eventId: "grant-ann", account: "ann", delta: 1_000, reason: "welcome" },
          { admin: hub.privateKey },
        )
      ).status,
    ).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await sql?.end();
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    await new Promise<void>((r) => (roster ? roster.close(() => r()) : r()));
    await service?.close();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (payload: unknown, as: { token: string } | { admin: KeyObject } | { machine: string; pem: string }) => {
    const body = JSON.stringify(payload);
    const auth =
      "token" in as
        ? { authorization: `Bearer ${as.token}` }
        : "admin" in as
          ? signGrant(body, as.admin)
          : signRequest(
              { method: "POST", path: "/v1/events", body, target: SignedAudience.ledger },
              { machine: as.machine, privateKey: privateKeyFromPem(as.pem) },
            );
    return fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body,
    });
  };
  const eve = { machine: "evebox", pem: eveBox.privateKeyPem };
  const ann = { machine: "annbox", pem: annBox.privateKeyPem };
  /** Everything an attack could change, as text: balances, the head, and the entries. */
  const state = async () =>
    JSON.stringify(
      await sql`select (select json_agg(b order by account) from balances b) as balances, (select row_to_json(h) from head h) as head, (select count(*) from entries)::int as entries`,
    );
  const sumOfBalances = async () =>
    Number((await sql`select coalesce(sum(balance), 0)::bigint as s from balances`)[0]?.s);
  const sumOfGrants = async () =>
    Number((await sql`select coalesce(sum(delta), 0)::bigint as s from entries where kind = 'adjust'`)[0]?.s);

  it.each([
    [
      "a bare earn for its own owner",
      { kind: "earn", eventId: "x-1", account: "eve", amount: 1_000 },
      422,
      "unpaired_earn",
      "kind",
    ],
    [
      "an earn of 2^53 - 1",
      { kind: "earn", eventId: "x-2", account: "eve", amount: Number.MAX_SAFE_INTEGER },
      400,
      "invalid_request",
      "amount",
    ],
    [
      "a spend above the per-event maximum",
      { kind: "spend", eventId: "x-3", account: "eve", payee: "eve", amount: LedgerAmounts.eventMicroMax + 1 },
      400,
      "invalid_request",
      "amount",
    ],
    [
      "a spend from another owner's account, paid to itself",
      { kind: "spend", eventId: "x-4", account: "ann", payee: "eve", amount: 500 },
      403,
      "forbidden",
      "account",
    ],
    [
      "a hold on another owner's account",
      { kind: "hold", eventId: "x-5", account: "ann", payee: "eve", amount: 500, jobId: "j" },
      403,
      "forbidden",
      "account",
    ],
    [
      "a grant to itself",
      { kind: "adjust", eventId: "x-6", account: "eve", delta: 1_000, reason: "mine" },
      403,
      "admin_signature_required",
      "kind",
    ],
    [
      "a spend from an account it never was credited",
      { kind: "spend", eventId: "x-7", account: "eve", payee: "eve", amount: 1 },
      404,
      "unknown_account",
      "account",
    ],
  ])("refuses eve's machine %s, and nothing changes", async (_name, payload, status, code, field) => {
    const before = await state();
    const res = await post(payload, eve);
    expect(res.status).toBe(status);
    const { error } = (await res.json()) as { error: { code: string; field?: string; message: string } };
    expect(error).toMatchObject({ code, field });
    expect(await state()).toBe(before);
  });

  it("settles a hold for no more than it holds, only by its payee, once; credits are conserved", async () => {
    expect(
      (await post({ kind: "hold", eventId: "h-1", account: "ann", payee: "eve", amount: 100, jobId: "job-1" }, ann))
        .status,
    ).toBe(201);
    const refusals: [string, object, { machine: string; pem: string }, number, string][] = [
      [
        "a settlement above the hold",
        { kind: "settle", eventId: "s-1", account: "ann", holdEventId: "h-1", amount: 101 },
        eve,
        422,
        "settle_exceeds_hold",
      ],
      [
        "the payer settling its own hold",
        { kind: "settle", eventId: "s-2", account: "ann", holdEventId: "h-1", amount: 1 },
        ann,
        403,
        "not_payee",
      ],
      [
        "a settlement of a hold on another account",
        { kind: "settle", eventId: "s-3", account: "eve", holdEventId: "h-1", amount: 1 },
        eve,
        404,
        "unknown_hold",
      ],
    ];
    for (const [name, payload, who, status, code] of refusals) {
      const before = await state();
      const res = await post(payload, who);
      expect(res.status, name).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code, name).toBe(code);
      expect(await state(), name).toBe(before);
    }
    const settled = await post({ kind: "settle", eventId: "s-4", account: "ann", holdEventId: "h-1", amount: 60 }, eve);
    expect(settled.status).toBe(201);
    expect(await service.ledger.balance("ann")).toMatchObject({ balance: 940, held: 0 });
    expect(await service.ledger.balance("eve")).toMatchObject({ balance: 60, held: 0 });
    const again = await post({ kind: "settle", eventId: "s-5", account: "ann", holdEventId: "h-1", amount: 1 }, eve);
    expect(again.status).toBe(409);
    expect(await sumOfBalances()).toBe(await sumOfGrants());
    const grants = (await (await fetch(`${url}/v1/grants`)).json()) as { grants: { eventId: string; delta: number }[] };
    expect(grants.grants).toEqual([expect.objectContaining({ eventId: "grant-ann", delta: 1_000 })]);
  });

  it("lets the requester dispute (void) a hold, and eve pays back only what it earned", async () => {
    expect(
      (await post({ kind: "hold", eventId: "h-2", account: "ann", payee: "eve", amount: 50, jobId: "job-2" }, ann))
        .status,
    ).toBe(201);
    expect((await post({ kind: "void", eventId: "v-2", account: "ann", holdEventId: "h-2" }, ann)).status).toBe(201);
    expect(
      (await post({ kind: "settle", eventId: "s-6", account: "ann", holdEventId: "h-2", amount: 1 }, eve)).status,
    ).toBe(409);
    expect((await post({ kind: "spend", eventId: "p-1", account: "eve", payee: "ann", amount: 61 }, eve)).status).toBe(
      409,
    );
    expect(await sumOfBalances()).toBe(await sumOfGrants());
  });

  it("refuses direct writes to balances and the head; proofs and verify keep working", async () => {
    expect(
      (await fetch(`${url}/v1/log/snapshots`, { method: "POST", headers: { authorization: `Bearer ${token}` } }))
        .status,
    ).toBe(201);
    const before = await state();
    const writes = [
      sql`update balances set balance = balance + 1000000 where account = 'eve'`,
      sql`insert into balances (account, balance, held, as_of_seq) values ('mallory', 5, 0, 0)`,
      sql`delete from balances where account = 'ann'`,
      sql`truncate balances`,
      sql`update head set size = size + 1`,
      sql`delete from head`,
    ];
    for (const write of writes) await expect(write).rejects.toThrow(/change only through the ledger's append path/);
    expect(await state()).toBe(before);
    const proof = await fetch(`${url}/v1/log/proofs/eve`);
    expect(proof.status).toBe(200);
    expect(verifyProofBundle(await proof.json(), service.ledger.publicKey)).toMatchObject({
      account: "eve",
      balance: 60,
    });
    expect(await service.ledger.audit()).toMatchObject({ ok: true });
  });

  it("refuses in the database a balance above the maximum the rules enforce", async () => {
    // Migration 0007 and schema.ts write LedgerAmounts.balanceMicroMax as a literal.
    const [row] =
      await sql`select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'balances_within_limits'`;
    expect(String(row?.def).replaceAll(/[(),]/g, "")).toContain(
      `balance <= '${LedgerAmounts.balanceMicroMax}'::bigint`.replaceAll(/[(),]/g, ""),
    );
  });

  it("logs every 500 with its error, and answers a database that went away with 503", async () => {
    // A fault inside the handler that no retry mends: the table the read needs is gone.
    await sql`alter table balances rename to balances_gone`;
    const res = await fetch(`${url}/v1/balances/ann`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBeTruthy();
    expect(errors).toEqual([
      expect.objectContaining({ obj: expect.objectContaining({ path: "/v1/balances/ann", err: expect.anything() }) }),
    ]);
    await sql`alter table balances_gone rename to balances`;
    // The database goes away under the service: the caller may retry later, nothing is broken inside.
    await service.database.close();
    const gone = await fetch(`${url}/v1/balances/ann`);
    expect(gone.status).toBe(503);
    expect(gone.headers.get("retry-after")).toBe("1");
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    expect(errors).toHaveLength(1);
  });
});

/** Serves `fetch` on a free loopback port; resolves to its base URL. */
function listen(fetch: (req: Request) => Response | Promise<Response>, keep: (s: ServerType) => void): Promise<string> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve(`http://127.0.0.1:${info.port}`),
    );
    keep(server);
  });
}
